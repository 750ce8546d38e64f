"""`steerfast make condition`: gate a saved plan by a condition fitted on labelled prompts; the
result round-trips, `inspect` shows the gate, and a .gguf output is refused clearly."""

import json

import pytest
import torch
from cli_helpers import assert_clean_error, steerfast

from steerfast.plan import Intervention, SteeringPlan
from steerfast.testing import tiny_model, tiny_tokenizer

STEER = [w * k for w in ("apple", "bread", "cake", "dough", "egg", "fig", "grape", "honey") for k in (1, 2)]
OTHER = [w * k for w in ("1234", "5678", "9090", "#$%&", "4242", "@@11", "7777", "3141") for k in (1, 2)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cond")
    model = tiny_model("llama")
    model.save_pretrained(str(d / "tiny"))
    tiny_tokenizer().save_pretrained(str(d / "tiny"))
    iv = Intervention(2, "mlp.out", "add", torch.ones(model.config.hidden_size), "from_prompt_end", 2.0)
    SteeringPlan([iv], "caa").save(d / "p.safetensors")
    rows = [
        {"prompt": t, "label": lab, "split": "dev" if i % 4 == 0 else "train"}
        for lab, texts in (("food", STEER), ("other", OTHER))
        for i, t in enumerate(texts)
    ]
    (d / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_make_condition_then_inspect(files, tmp_path):
    out = tmp_path / "gated.safetensors"
    args = ["make", "condition", files / "prompts.jsonl", "--plan", files / "p.safetensors"]
    res = steerfast(*args, "--steer-label", "food", "-o", out, "--model", files / "tiny")
    assert res.returncode == 0, res.stderr
    plan = SteeringPlan.load(out)
    (cond,) = plan.condition.conditions
    assert cond.layer <= 2 and plan.condition.gated is None
    assert "gate:" in res.stdout
    shown = steerfast("inspect", out)
    assert shown.returncode == 0, shown.stderr
    assert f"at layer.in of layer {cond.layer} >" in shown.stdout
    bad = steerfast(*args, "--steer-label", "food", "-o", tmp_path / "x.gguf", "--model", files / "tiny")
    assert_clean_error(bad, "conditional", "control vector")
    assert not (tmp_path / "x.gguf").exists()
