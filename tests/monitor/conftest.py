"""The server fixtures of tests/serve (tests/server_fixtures.py: a real `steerfast serve`
process, the tiny model dir); the launcher is tests/serve_proc.py."""

from server_fixtures import start_server, tiny_model_path  # noqa: F401
