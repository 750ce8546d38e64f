"""`python -m steerfast.bench.gpu --dry-run`: the GPU command's code paths on CPU at tiny
sizes (kernel tests through pytest, op cells, eager and compiled decode cells of both models,
JSON + Markdown). Every section and cell must run without error; steered logits must match
the hooks; compiled decode must not recompile while timed."""

import json
import math

import torch

from steerfast.bench import gpu


def test_gpu_command_dry_run(tmp_path):
    assert gpu.main(["--dry-run", "--out", str(tmp_path), "--name", "dry"]) == 0
    res = json.loads((tmp_path / "dry.json").read_text())
    md = (tmp_path / "dry.md").read_text()
    assert res["mode"] == "dry-run"
    sections = res["sections"]
    assert set(sections) == {"kernels", "ops", "decode"}
    assert all(s["status"] == "ok" for s in sections.values()), {
        k: s.get("error") for k, s in sections.items()
    }

    kern = sections["kernels"]["result"]
    assert kern["returncode"] == 0 and "test_kern_cuda.py" in kern["command"]

    rows = sections["ops"]["result"]["rows"]
    cfg = gpu.DRY["ops"]
    assert len(rows) == 2 * len(cfg["dtypes"]) * len(cfg["M"]) * len(cfg["D"])
    for row in rows:
        assert "error" not in row, row
        assert all(v > 0 and math.isfinite(v) for v in row["ms"].values()), row

    cells = sections["decode"]["result"]["cells"]
    assert {(c["model"], c["engine"]) for c in cells} == {
        (m, e) for m in gpu.DRY["models"] for e in gpu.DRY["engines"]
    }
    for c in cells:
        assert "error" not in c, c.get("traceback")
        assert set(c["variants"]) == {"unsteered", "hooks", "patch", "bank (K=2)"}
        for name, v in c["variants"].items():
            assert "error" not in v, (c["model"], c["engine"], name, v["error"])
            assert v["median_ms"] > 0 and v["n"] == gpu.DRY["steps"]
            if name in ("patch", "bank (K=2)"):
                assert v["max_abs_diff_vs_hooks"] <= 1e-5  # fp32 in the dry run
            if c["engine"] != "eager":
                assert v["compiled_max_abs_diff_vs_eager"] <= 1e-4
                assert v["recompiles_timed"] == 0
    assert "## decode: ok" in md and "| llama-1b | cudagraphs |" in md
    torch._dynamo.reset()


def test_gpu_command_without_cuda_points_to_the_dry_run(capsys):
    if torch.cuda.is_available():
        return  # nothing to refuse on a GPU machine
    assert gpu.main(["--out", "/nonexistent"]) == 2
    assert "--dry-run" in capsys.readouterr().err
