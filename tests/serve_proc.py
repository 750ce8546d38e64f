"""The one launcher of real server processes for the tests (tests/serve, tests/monitor,
tests/vllm_plugin) and benchmarks/soak_serve.py: no mock server, no in-process app. tests/ is
on pytest's pythonpath, so every test folder says `from serve_proc import ...`; the benchmarks,
run from the repo root, import it as the package `tests.serve_proc`.

    srv = RunningServer(["--model", str(model_dir), "--max-tokens", "32"], log_path)
    r = srv.client().completions.create(model=srv.model, prompt="Hi", max_tokens=4)

`RunningServer(flags, log_path, env=None, timeout=240)` runs `python -m steerfast serve --port
<free> --threads 1 *flags` (`--threads 1` unless the flags name it; `--engine vllm` ignores it)
in a session of its own, waits up to `timeout` s for `/health` to answer 200, and stops with
SIGTERM to the server (`stop`: SIGKILL to its whole process group if it has not exited in time)
or SIGKILL to the whole group (`kill9`: vLLM's engine-core child dies with its server). The
child's environment is ours plus TQDM_DISABLE=1 and OMP_NUM_THREADS=1, then `env` (a value of
None keeps ours: vLLM sizes its own threads). `cmd=[...]` runs another program instead of
`python -m steerfast serve --port <free>` ("{port}" in it is the free port; the flags follow
it), and `ready_path` names the route that must answer 200 (the plans-only app's /loaded).
`tiny_server(model_dir, log_path, *flags)` is one on a tiny model saved by `tiny_model_dir` with
the small limits the security / persistence / metrics tests use (its requests may say
model="m"). server_fixtures.py's `start_server` fixture starts them per test module.
"""

from __future__ import annotations

import contextlib
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
# the template of a model whose tokenizer adds BOS and whose template writes it (Llama 3, Gemma)
BOS_CHAT_TEMPLATE = "{{ bos_token }}" + CHAT_TEMPLATE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """One `steerfast serve` subprocess: `base` (http://127.0.0.1:PORT), `url` (base + /v1)."""

    def __init__(
        self,
        flags,
        log_path: Path,
        env: dict | None = None,
        timeout: float = 240,
        model: str | None = None,
        *,
        cmd: list[str] | None = None,
        ready_path: str = "/health",
        poll: float = 0.2,
    ):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + "/v1"
        self.log_path = Path(log_path)
        self.ready_path = ready_path
        self.poll = poll
        if cmd is None:
            cmd = [sys.executable, "-m", "steerfast", "serve", "--port", str(self.port)]
            if "--threads" not in flags:
                cmd += ["--threads", "1"]
        else:
            cmd = [str(a).replace("{port}", str(self.port)) for a in cmd]
        self.cmd = cmd + [str(f) for f in flags]
        self._model = model
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_child_env(env),
            start_new_session=True,  # its own process group: kill9 takes its children too
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

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
                if httpx.get(self.base + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(
                    f"server did not answer {self.ready_path} in {timeout} s:\n{self.log()[-3000:]}"
                )
            time.sleep(self.poll)

    def client(self, api_key: str = "unused", **kw):
        """The official openai client on this server (no retries: a test sees every error)."""
        import openai

        kw = {"timeout": 300, "max_retries": 0, **kw}
        return openai.OpenAI(base_url=self.url, api_key=api_key, **kw)

    def async_client(self, api_key: str = "unused", **kw):
        import openai

        kw = {"timeout": 300, "max_retries": 0, **kw}
        return openai.AsyncOpenAI(base_url=self.url, api_key=api_key, **kw)

    def stats(self, **headers) -> dict:
        return httpx.get(self.base + "/v1/steering/stats", headers=headers, timeout=30).json()

    def settled_registrations(self, timeout: float = 15.0, **headers) -> dict:
        """The engine's per-request tables once nothing is in flight (all 0), or as they are
        after `timeout` s (a cancelled request is freed at the engine's next step)."""
        deadline = time.time() + timeout
        while True:
            regs = self.stats(**headers)["registrations"]
            if not any(regs.values()) or time.time() > deadline:
                return regs
            time.sleep(0.05)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is gone: nothing left to kill
            os.killpg(self.proc.pid, signal.SIGKILL)

    def kill9(self) -> None:
        """SIGKILL to the server's whole process group (vLLM's engine core too)."""
        self._kill_group()
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (the server drains), SIGKILL to its process group if it has not exited after
        `timeout` s."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def _child_env(env: dict | None) -> dict:
    """Ours + TQDM_DISABLE=1, OMP_NUM_THREADS=1 + `env`; a None value in `env` keeps ours."""
    out = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    for key, value in (env or {}).items():
        if value is not None:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
        else:
            out.pop(key, None)
    return out


def launch(*flags: str, log_path: Path, env: dict | None = None, timeout: float = 240) -> RunningServer:
    return RunningServer(list(flags), log_path, env=env, timeout=timeout)


def tiny_server(model_dir: Path, log_path: Path, *flags: str, env: dict | None = None) -> RunningServer:
    """A server on a tiny model dir, prompts <= 48 tokens, max_tokens <= 64 (later flags win)."""
    base = ["--model", str(model_dir), "--served-model-name", "m"]  # the tests' requests say model="m"
    base += ["--max-prompt-tokens", "48", "--max-tokens", "64"]
    return RunningServer(base + list(flags), log_path, env=env, model=str(model_dir))


Server = tiny_server  # the name benchmarks/soak_serve.py imports


def tiny_model_dir(folder: Path, bos: bool = False, context: int | None = None) -> Path:
    """A tiny llama + the character tokenizer saved where `steerfast serve --model DIR` loads
    them. bos=True: the tokenizer adds <bos> to every text and the chat template writes it
    too (as Llama 3's and Gemma's do), so a rendered chat must be tokenised without it.
    context: its max_position_embeddings (the tiny default is 128 tokens)."""
    from steerfast.testing import tiny_model, tiny_tokenizer

    path = folder / ("tiny-llama" + ("-bos" if bos else "") + (f"-ctx{context}" if context else ""))
    if not path.exists():
        extra = {"max_position_embeddings": context} if context else {}
        tiny_model("llama", **extra).save_pretrained(path)
        tok = tiny_tokenizer()
        tok.chat_template = CHAT_TEMPLATE
        if bos:
            from tokenizers import processors

            tok.chat_template = BOS_CHAT_TEMPLATE
            bos_id = tok.bos_token_id
            tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
                single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos_id)]
            )
        tok.save_pretrained(path)
    return path


def plan_file(folder: Path, name: str, seed: int) -> Path:
    """A plan touching every site kind of the tiny llama (its weights differ per seed)."""
    from steerfast.testing import random_plan, tiny_model

    path = folder / f"{name}.safetensors"
    random_plan(tiny_model("llama"), seed=seed).save(path)
    return path
