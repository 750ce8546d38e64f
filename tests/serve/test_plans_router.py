"""The plan routes mounted on another FastAPI app (as the vLLM plugin mounts them): upload,
list, delete and the admin check work there, uploads survive a restart, and the process never
imported the engine, the seam or transformers' continuous batching (a real uvicorn process)."""

import sys
from pathlib import Path

import httpx
import pytest
from serve_proc import OCTET, RunningServer, plan_file, tiny_model_dir

APP = Path(__file__).with_name("plans_router_app.py")
KEY = "admin-secret"


def plans_only(model_dir, plan_dir, log) -> RunningServer:
    """`python plans_router_app.py PORT MODEL_DIR PLAN_DIR ADMIN_KEY`, ready when /loaded answers."""
    cmd = [sys.executable, str(APP), "{port}"]
    return RunningServer([model_dir, plan_dir, KEY], log, timeout=120, cmd=cmd, ready_path="/loaded")


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
    srv = plans_only(model, plan_dir, d / "a.log")
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
    again = plans_only(model, plan_dir, d / "b.log")  # a restart lists what was uploaded
    try:
        listed = httpx.get(again.base + "/v1/steering/plans", timeout=10).json()
        assert [p["name"] for p in listed["data"]] == ["p1"]
    finally:
        again.stop()
