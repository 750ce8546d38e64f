"""The server fixtures of tests/serve (a real `steerfast serve` process, the tiny model dir)."""

import importlib.util
import sys
from pathlib import Path

_SERVE = Path(__file__).parents[1] / "serve"
sys.path.insert(0, str(_SERVE))  # serve_proc, as tests/serve imports it
_spec = importlib.util.spec_from_file_location("_serve_conftest", _SERVE / "conftest.py")
_serve = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_serve)

start_server = _serve.start_server
tiny_model_path = _serve.tiny_model_path
RunningServer = _serve.RunningServer
