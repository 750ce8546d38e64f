"""`steerfast tune` as a user runs it (tiny model): the chosen plan, table and plot written,
inspect shows how it was chosen; a refusal and bad input end with exit 2 and one line."""

import json

import pytest
from cli_helpers import assert_clean_error, steerfast

from steerfast.testing import tiny_model, tiny_tokenizer

GRID = ("--layers", "1,2", "--strengths", "2,8", "--tokens", "6")
LOOSE = ("--max-kl", "100", "--max-ppl-ratio", "1e6", "--max-rep", "1")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tune") / "tiny"
    tiny_model("llama").save_pretrained(str(d))
    tiny_tokenizer().save_pretrained(str(d))
    return d


def test_tune_writes_plan_table_plot(tiny, tmp_path):
    out, table, png = tmp_path / "t.safetensors", tmp_path / "t.json", tmp_path / "t.png"
    res = steerfast("tune", "caa", "--model", tiny, *GRID, *LOOSE, "-o", out, "--table", table, "--plot", png)
    assert res.returncode == 0, res.stderr
    assert "<- chosen" in res.stdout and "grid took" in res.stdout
    rows = json.loads(table.read_text())
    assert {(r["layer"], r["strength"]) for r in rows} == {(1, 2.0), (1, 8.0), (2, 2.0), (2, 8.0)}
    assert png.stat().st_size > 1000
    shown = steerfast("inspect", out)
    assert (
        shown.returncode == 0
        and "tuned: layer" in shown.stdout
        and "chosen by: steerfast.tune" in shown.stdout
    )


def test_tune_refusal_is_exit_2_and_keeps_table(tiny, tmp_path):
    table = tmp_path / "r.json"
    res = steerfast(
        "tune",
        "caa",
        "--model",
        tiny,
        *GRID,
        "--max-kl",
        "0",
        "--table",
        table,
        "-o",
        tmp_path / "x.safetensors",
    )
    # progress notes ("tune: ...") and library warnings may precede it: one error line, no traceback
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("steerfast tune: error:")]
    assert len(errors) == 1 and res.stderr.strip().endswith(errors[0]), res.stderr
    assert "tune refused" in errors[0] and "every cell exceeds the damage budget" in errors[0]
    assert len(json.loads(table.read_text())) == 4 and not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (("nope",), "unknown plan family 'nope'"),
        (("caa", "--layers", "a,b"), "--layers must be comma-separated ints"),
        (("caa", "--max-kl", "-1"), "budget kl must be a non-negative number"),
        (("caa", "--eval", "missing.jsonl"), "missing.jsonl"),
    ],
)
def test_bad_input_before_model_loads(args, needle):
    assert_clean_error(steerfast("tune", *args), needle)


@pytest.mark.parametrize(
    "args,needle",
    [(("--layers", "1,7"), "layer 7 is not an int in [0, 3)"), (("--strengths", "0"), "strength 0.0")],
)
def test_bad_grid_for_the_model(tiny, args, needle):
    assert_clean_error(steerfast("tune", "caa", "--model", tiny, *args), needle)
