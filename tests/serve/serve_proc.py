"""A real `steerfast serve` process on a tiny random-init model (saved as a local HF directory),
for the security, persistence and metrics tests: start, wait for /health, stop or kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

OCTET = {"content-type": "application/octet-stream"}
# the character tokenizer has none; chat requests need one (printable ASCII only)
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model_dir(folder: Path) -> Path:
    """A tiny llama + the character tokenizer saved where `steerfast serve --model DIR` loads them."""
    from steerfast.testing import tiny_model, tiny_tokenizer

    path = folder / "tiny-llama"
    if not path.exists():
        tiny_model("llama").save_pretrained(path)
        tok = tiny_tokenizer()
        tok.chat_template = CHAT_TEMPLATE
        tok.save_pretrained(path)
    return path


def plan_file(folder: Path, name: str, seed: int) -> Path:
    """A plan touching every site kind of the tiny llama (its weights differ per seed)."""
    from steerfast.testing import random_plan, tiny_model

    path = folder / f"{name}.safetensors"
    random_plan(tiny_model("llama"), seed=seed).save(path)
    return path


class Server:
    def __init__(self, model_dir: Path, log_path: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.model = str(model_dir)  # the served model's name (requests must name it)
        cmd = [sys.executable, "-m", "steerfast", "serve", "--model", str(model_dir)]
        cmd += ["--served-model-name", "m"]  # the tests' requests say model="m"
        cmd += ["--port", str(self.port), "--threads", "1", "--max-prompt-tokens", "48", "--max-tokens", "64"]
        cmd += list(args)
        self._log = open(log_path, "a")
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", **(env or {})},
        )
        self.wait_ready()

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

    def log(self) -> str:
        self._log.flush()
        return Path(self.log_path).read_text()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode
