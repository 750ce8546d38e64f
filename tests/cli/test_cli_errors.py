"""Bad input on the command line: exit code 2 and one line naming the problem, no traceback,
and nothing written."""

import pytest
import torch
from cli_helpers import assert_clean_error, steerfast

from steerfast.models import _embedded_gguf
from steerfast.plan import Intervention, SteeringPlan
from steerfast.testing import tiny_model, tiny_tokenizer

HINT = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "cols.csv").write_text("pos,neg\nnice,nasty\n")
    (d / "ragged.csv").write_text("positive,negative\nnice,nasty,extra\n")
    (d / "broken.jsonl").write_text('{"positive": "a", "negative": "b"}\n{"positive": oops}\n')
    (d / "empty.jsonl").write_text("\n")
    (d / "blank.jsonl").write_text('{"positive": "a", "negative": "  "}\n')
    (d / "mc.jsonl").write_text('{"prompt": "Q", "options": " yes", "answer": 0}\n')
    (d / "pairs.txt").write_text("positive,negative\n")
    (d / "notaplan.safetensors").write_text("garbage")
    SteeringPlan([Intervention(4, "mlp.out", "add", torch.ones(576), "all", 2.0)], "caa", dict(HINT)).save(
        d / "p.safetensors"
    )
    SteeringPlan(
        [Intervention(4, "mlp.out", "add", torch.ones(576), "from_prompt_end", 2.0)], "caa", dict(HINT)
    ).save(d / "caa.safetensors")
    tiny = d / "tiny"
    tiny_model("llama").save_pretrained(str(tiny))
    tiny_tokenizer().save_pretrained(str(tiny))
    return d


def test_missing_files(files, tmp_path):
    assert_clean_error(
        steerfast("make", "caa", files / "nope.jsonl", "-o", tmp_path / "x.safetensors"),
        "no data file at",
        "nope.jsonl",
    )
    assert_clean_error(
        steerfast("make", "caa", "example:nope.jsonl", "-o", tmp_path / "x.safetensors"), "no data file at"
    )
    assert_clean_error(steerfast("convert", files / "nope.gguf", tmp_path / "x.safetensors"), "no such file")
    assert_clean_error(steerfast("inspect", files / "nope.safetensors"), "no such file")
    assert_clean_error(steerfast("generate", "--plan", files / "nope.gguf", "hi"), "no such file")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "recipe,name,needles",
    [
        ("caa", "cols.csv", ("missing column(s) positive, negative", "the file has neg, pos")),
        ("actadd", "ragged.csv", ("ragged.csv:2: expected 2 columns",)),
        ("caa", "broken.jsonl", ("broken.jsonl:2: not JSON",)),
        ("caa", "empty.jsonl", ("has no rows",)),
        ("caa", "blank.jsonl", ("row 1: 'negative' is empty",)),
        ("laai", "cols.csv", ("missing column(s) prompt, target",)),
        ("sadi", "mc.jsonl", ("'options' must be list, got str",)),
        ("caa", "pairs.txt", ("data files are .jsonl or .csv",)),
    ],
)
def test_bad_data_files(files, tmp_path, recipe, name, needles):
    assert_clean_error(steerfast("make", recipe, files / name, "-o", tmp_path / "x.safetensors"), *needles)
    assert not (tmp_path / "x.safetensors").exists()


def test_foreign_gguf_and_corrupt_plan(files, tmp_path):
    model_gguf = _embedded_gguf()  # a real model GGUF is not a control vector
    for args in (
        ["convert", model_gguf, tmp_path / "x.safetensors"],
        ["inspect", model_gguf],
        ["generate", "--plan", model_gguf, "hi"],
    ):
        assert_clean_error(steerfast(*args), "is a GGUF 'llama' model, not a control vector")
    assert_clean_error(
        steerfast("inspect", files / "notaplan.safetensors"), "not a readable safetensors plan"
    )


def test_what_a_control_vector_cannot_hold(files, tmp_path):
    assert_clean_error(
        steerfast("convert", files / "caa.safetensors", tmp_path / "x.gguf"),
        "steers at positions 'from_prompt_end'",
        "--allow-positions",
    )
    assert_clean_error(
        steerfast("convert", files / "p.safetensors", tmp_path / "x.pt"), "must end in .safetensors or .gguf"
    )
    assert not list(tmp_path.iterdir())


def test_wrong_model(files, tmp_path):
    assert_clean_error(
        steerfast("generate", "--plan", files / "p.safetensors", "--model", files / "tiny", "hi"),
        "does not fit the model",
        "hidden_size=576",
        "hidden_size=64",
    )
    assert_clean_error(
        steerfast("convert", files / "p.safetensors", tmp_path / "x.gguf", "--model", files / "tiny"),
        "does not fit the model",
    )
    assert_clean_error(
        steerfast(
            "make",
            "caa",
            "example:pairs.jsonl",
            "--model",
            files / "missing-model",
            "-o",
            tmp_path / "x.safetensors",
        ),
        "not found",
    )
    assert not list(tmp_path.iterdir())
