"""`--plan-dir`: uploads survive `kill -9` at any moment, never as a partial file, and a
steered request after the restart equals the one before (real server processes, tiny llama)."""

import os
import random
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from serve_proc import OCTET, plan_file, tiny_model_dir, tiny_server

PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("persist")
    return d, tiny_model_dir(d)


def _start(model, d, plan_dir, tag, *extra):
    return tiny_server(model, d / f"{tag}.log", "--allow-plan-uploads", "--plan-dir", str(plan_dir), *extra)


def _listed(s) -> list[str]:
    return sorted(p["name"] for p in httpx.get(s.base + "/v1/steering/plans", timeout=30).json()["data"])


def _upload(s, name, path) -> int:
    return httpx.post(
        s.base + "/v1/steering/plans",
        params={"name": name},
        content=path.read_bytes(),
        headers=OCTET,
        timeout=60,
    ).status_code


def _steered(s, plan) -> str:
    c = openai.OpenAI(base_url=s.base + "/v1", api_key="unused", timeout=120, max_retries=0)
    r = c.completions.create(
        model=s.model, prompt=PROMPT, max_tokens=12, temperature=0, extra_body={"steering": [{"plan": plan}]}
    )
    return r.choices[0].text


def _partials(plan_dir):
    return [p.name for p in plan_dir.iterdir() if p.name.endswith(".partial")]


def test_uploads_and_deletes_survive_kill_9_also_mid_upload(files):
    d, model = files
    plan_dir = d / "plans-a"
    paths = {n: plan_file(d, n, seed) for n, seed in (("p1", 1), ("p2", 2), ("p3", 3))}
    s = _start(model, d, plan_dir, "a1")
    try:
        assert _upload(s, "p1", paths["p1"]) == 201
        assert _upload(s, "p2", paths["p2"]) == 201
        assert httpx.delete(s.base + "/v1/steering/plans/p2", timeout=30).status_code == 200
        before = _steered(s, "p1")
        unsteered = openai.OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0).completions.create(
            model=s.model, prompt=PROMPT, max_tokens=12, temperature=0
        )
        assert before != unsteered.choices[0].text  # the plan really steers
        # p3: half of its bytes sent chunked, then kill -9 while the server holds a partial file
        data = paths["p3"].read_bytes()
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        sock.sendall(
            b"POST /v1/steering/plans?name=p3 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n" % s.port
        )
        half = data[: len(data) // 2]
        sock.sendall(b"%x\r\n%s\r\n" % (len(half), half))
        deadline = time.time() + 30
        while not _partials(plan_dir):
            assert time.time() < deadline, "the upload never reached the plan dir"
            time.sleep(0.02)
        s.kill9()
        sock.close()
        assert _partials(plan_dir)  # the crash left a partial file behind...
    finally:
        s.stop()
    s = _start(model, d, plan_dir, "a2")
    try:
        assert _listed(s) == ["p1"]  # ...which the restart neither lists nor keeps
        assert not _partials(plan_dir)
        assert sorted(p.name for p in plan_dir.iterdir()) == ["p1.safetensors"]
        assert _steered(s, "p1") == before
    finally:
        s.stop()


@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_at_a_random_moment_keeps_exactly_the_completed_uploads(files, seed):
    d, model = files
    plan_dir = d / f"plans-r{seed}"
    paths = [plan_file(d, f"u{i}", 100 + i) for i in range(30)]
    s = _start(model, d, plan_dir, f"r{seed}-1", "--slots", "32")
    completed, attempted, unexpected = [], [], []

    def upload_all():
        for i, path in enumerate(paths):
            attempted.append(f"u{i}")
            try:
                status = _upload(s, f"u{i}", path)
            except httpx.HTTPError:
                return  # the server died under this upload
            if status != 201:
                unexpected.append((f"u{i}", status))
                return
            completed.append(f"u{i}")

    try:
        t = threading.Thread(target=upload_all)
        t.start()
        time.sleep(random.Random(seed).uniform(0.3, 1.5))
        s.kill9()
        t.join(timeout=60)
    finally:
        s.stop()
    assert not unexpected
    in_flight = set(attempted) - set(completed)  # at most one: its 201 may not have arrived
    assert len(in_flight) <= 1 and completed, (completed, attempted)
    s = _start(model, d, plan_dir, f"r{seed}-2", "--slots", "32")
    try:
        listed = set(_listed(s))
        assert set(completed) <= listed <= set(completed) | in_flight, (listed, completed, in_flight)
        assert not _partials(plan_dir)
        # every listed plan is whole: the restart loaded and validated each one; and each steers
        assert _steered(s, completed[0])
    finally:
        s.stop()


def test_plan_store_writes_atomically_and_clears_partials(tmp_path):
    from steerfast.serve.plan_store import PlanStore

    store = PlanStore(tmp_path)
    partial, f = store.open_partial("a")
    with f:
        f.write(b"whole file")
    assert store.saved() == {}  # not visible under its name before commit
    store.commit(partial, "a")
    leftover, f = store.open_partial("b")  # a crash before commit
    f.write(b"half")
    f.close()
    assert store.saved() == {"a": tmp_path / "a.safetensors"}
    assert store.clear_partials() == [leftover.name] and not leftover.exists()  # at start
    assert (tmp_path / "a.safetensors").read_bytes() == b"whole file"
    assert store.delete("a") and not store.delete("a")
    assert store.saved() == {}


def test_a_plan_file_that_does_not_fit_stops_the_start_naming_it(files):
    from steerfast.testing import random_plan, tiny_model

    d, model = files
    plan_dir = d / "plans-bad"
    plan_dir.mkdir()
    random_plan(tiny_model("llama", num_hidden_layers=6)).save(plan_dir / "deep.safetensors")  # layer 5
    r = subprocess.run(
        [sys.executable, "-m", "steerfast", "serve", "--model", str(model), "--plan-dir", str(plan_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("steerfast serve: error: --plan-dir file") and "deep.safetensors" in last
