"""The plan routes mounted on another FastAPI app (as the vLLM plugin mounts them): upload,
list, delete and the admin check work there, uploads survive a restart, and the process never
imported the engine, the seam or transformers' continuous batching (a real uvicorn process)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_proc import OCTET, free_port, plan_file, tiny_model_dir

APP = Path(__file__).with_name("plans_router_app.py")
KEY = "admin-secret"


class PlansOnly:
    def __init__(self, model_dir, plan_dir, log):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "a")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, str(APP), str(self.port), str(model_dir), str(plan_dir), KEY]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        while True:
            assert self.proc.poll() is None, Path(log).read_text()[-3000:]
            try:
                httpx.get(self.base + "/loaded", timeout=2)
                return
            except httpx.HTTPError:
                assert time.time() < deadline, "the plans-only app did not start"
                time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("plans-router")
    return d, tiny_model_dir(d)


def _upload(base, name, data, key=KEY):
    headers = {**OCTET, "Authorization": f"Bearer {key}"}
    return httpx.post(
        base + "/v1/steering/plans", params={"name": name}, content=data, headers=headers, timeout=60
    )


def test_plans_router_on_another_app(files):
    d, model = files
    plan_dir = d / "plans"
    data = plan_file(d, "p", 1).read_bytes()
    srv = PlansOnly(model, plan_dir, d / "a.log")
    try:
        assert httpx.get(srv.base + "/loaded", timeout=10).json() == {
            "heavy_at_import": [],
            "engine_modules": [],
        }
        r = _upload(srv.base, "p1", data, key="wrong")
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_key_required"
        assert _upload(srv.base, "p1", data).status_code == 201
        r = _upload(srv.base, "p1", data)
        assert r.status_code == 409 and r.json()["error"]["code"] == "plan_exists"
        assert _upload(srv.base, "p2", data).status_code == 201
        r = _upload(srv.base, "p3", data)  # the registry holds 2
        assert r.status_code == 409 and r.json()["error"]["code"] == "bank_full"
        r = _upload(srv.base, "bad", b"not a plan")
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_plan"
        listed = httpx.get(srv.base + "/v1/steering/plans", timeout=10).json()
        assert [p["name"] for p in listed["data"]] == ["p1", "p2"] and listed["slots"] == 2
        auth = {"Authorization": f"Bearer {KEY}"}
        assert httpx.delete(srv.base + "/v1/steering/plans/p2", timeout=10).status_code == 403
        assert httpx.delete(srv.base + "/v1/steering/plans/p2", headers=auth, timeout=10).status_code == 200
        r = httpx.delete(srv.base + "/v1/steering/plans/p2", headers=auth, timeout=10)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_plan"
        assert httpx.get(srv.base + "/loaded", timeout=10).json() == {
            "heavy_at_import": [],
            "engine_modules": [],
        }
    finally:
        srv.stop()
    assert sorted(p.name for p in plan_dir.iterdir()) == ["p1.safetensors"]
    again = PlansOnly(model, plan_dir, d / "b.log")  # a restart lists what was uploaded
    try:
        listed = httpx.get(again.base + "/v1/steering/plans", timeout=10).json()
        assert [p["name"] for p in listed["data"]] == ["p1"]
    finally:
        again.stop()
