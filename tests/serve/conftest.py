"""The server fixtures (tests/server_fixtures.py: `start_server`, `tiny_model_path`); the
launcher is tests/serve_proc.py (`from serve_proc import ...`)."""

from server_fixtures import start_server, tiny_model_path  # noqa: F401
