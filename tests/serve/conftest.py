"""A real `steerfast serve` process for the server tests (no mock server, no in-process app).

    def test_x(start_server, tiny_model_path):
        srv = start_server("--model", str(tiny_model_path), "--max-tokens", "32")
        r = srv.client().completions.create(model=srv.model, prompt="Hi", max_tokens=4)

`start_server(*flags, env=None)` runs `python -m steerfast serve --port <free> --threads 1 *flags`,
waits for `/health` to answer 200 and returns a `RunningServer` (base URL, process, log); every
server a module started is stopped when the module ends, so start one per module and reuse it
(`@pytest.fixture(scope="module")` around `start_server`). `launch()` is the same without pytest.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """One `steerfast serve` subprocess: `base` (http://127.0.0.1:PORT), `url` (base + /v1)."""

    def __init__(self, flags: list[str], log_path: Path, env: dict | None = None, timeout: float = 240):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + "/v1"
        self.log_path = Path(log_path)
        cmd = [sys.executable, "-m", "steerfast", "serve", "--port", str(self.port)]
        if "--threads" not in flags:
            cmd += ["--threads", "1"]
        self.cmd = cmd + list(flags)
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", **(env or {})},
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self._model: str | None = None

    @property
    def model(self) -> str:
        """The served model's name (from /v1/models; a server with --api-key needs a client)."""
        if self._model is None:
            self._model = httpx.get(self.url + "/models", timeout=10).json()["data"][0]["id"]
        return self._model

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"server did not answer /health in {timeout} s:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def client(self, api_key: str = "unused", **kw):
        """The official openai client on this server (no retries: a test sees every error)."""
        import openai

        kw = {"timeout": 300, "max_retries": 0, **kw}
        return openai.OpenAI(base_url=self.url, api_key=api_key, **kw)

    def async_client(self, api_key: str = "unused", **kw):
        import openai

        kw = {"timeout": 300, "max_retries": 0, **kw}
        return openai.AsyncOpenAI(base_url=self.url, api_key=api_key, **kw)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (the server drains), SIGKILL if it has not exited after `timeout` s."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def launch(*flags: str, log_path: Path, env: dict | None = None, timeout: float = 240) -> RunningServer:
    return RunningServer(list(flags), log_path, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    """A factory of real server processes; all of them stop when the module ends."""
    started: list[RunningServer] = []

    def start(*flags: str, env: dict | None = None, timeout: float = 240) -> RunningServer:
        folder = tmp_path_factory.mktemp("server")
        srv = launch(*flags, log_path=folder / "server.log", env=env, timeout=timeout)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny random-init llama + the character tokenizer (with a chat template), saved where
    `steerfast serve --model DIR` loads it: a server that starts in seconds."""
    from serve_proc import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny-model"))
