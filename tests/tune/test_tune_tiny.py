"""tune() end to end on a tiny random model: the table covers the grid, a generous budget
returns a plan whose metadata survives save/load and shows in `steerfast inspect`, a zero
budget refuses, every family (CAA, ActAdd, SADI) runs."""

import pytest
import torch

from steerfast.cli.inspect_plan import render, summary
from steerfast.errors import PlanError
from steerfast.plan import SteeringPlan
from steerfast.testing import tiny_model, tiny_tokenizer
from steerfast.tune import Budget, TuneRefused, family, tune
from steerfast.tune.damage import NeutralText

PAIRS = [("good day", "bad day"), ("nice cat", "mean cat"), ("happy me", "sad me")]
EVAL = [{"prompt": f"hello {i} there", "positive": " yes", "negative": " no"} for i in range(6)]
TEXT = ["the cat sat on the mat and looked at the door", "a man walked to the shop to buy some bread"]
LOOSE = Budget(kl=100.0, ppl_ratio=1e6, rep=1.0, loops=1.0)


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama"), tiny_tokenizer()


def _tune(tiny, fam="caa", budget=LOOSE, **kw):
    m, t = tiny
    data = {"actadd": {"positive": "good", "negative": "bad"}, "sadi": {"pairs": PAIRS, "k": 2}}.get(
        fam, {"pairs": PAIRS}
    )
    return tune(
        m,
        t,
        family(fam)(m, t, **data),
        EVAL,
        layers=[1, 2],
        strengths=[2.0, 8.0],
        budget=budget,
        neutral=NeutralText(t, TEXT, window=16, prompt=4),
        max_new_tokens=6,
        progress=False,
        family=fam,
        **kw,
    )


def test_table_covers_grid_and_choice_is_rule(tiny, tmp_path):
    res = _tune(tiny, plot=str(tmp_path / "p.png"))
    assert {(r["layer"], r["strength"]) for r in res.table} == {(1, 2.0), (1, 8.0), (2, 2.0), (2, 8.0)}
    for r in res.table:
        for k in ("effect", "kl", "ppl_ratio", "rep", "loops"):
            assert r[k]["lo"] <= r[k]["mean"] <= r[k]["hi"]
        assert r["kl"]["mean"] >= 0
    ok = [r for r in res.table if r["effect"]["lo"] > 0]
    assert res.chosen["effect"]["mean"] == max(r["effect"]["mean"] for r in ok)
    assert res.plan.interventions[0].strength == res.strength
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_log_odds_equal_full_forward_scoring(tiny):
    """The prefix-cached log-odds effect equals scoring every option with a full forward
    (evaluate.multiple_choice.option_logprobs) steered and unsteered; fp32 rounding only."""
    from steerfast.evaluate.multiple_choice import encode, option_logprobs
    from steerfast.tune.effect import LogOddsEffect

    m, t = tiny
    plan = family("caa")(m, t, pairs=PAIRS)(1).with_strength(8.0)
    got = LogOddsEffect(m, t, EVAL).per_item(plan)
    enc = encode(t, [{"prompt": e["prompt"], "options": [" yes", " no"], "answer": 0} for e in EVAL])
    steered, base = option_logprobs(m, enc, plan), option_logprobs(m, enc, None)
    want = [(s[0] - s[1]) - (b[0] - b[1]) for s, b in zip(steered, base)]
    assert max(abs(g - w) for g, w in zip(got, want)) < 1e-4
    assert max(abs(w) for w in want) > 1e-3  # the plan does move the log-odds


def test_metadata_round_trip_and_inspect(tiny, tmp_path):
    res = _tune(tiny)
    path = tmp_path / "tuned.safetensors"
    res.plan.save(path)
    back = SteeringPlan.load(path)
    assert back.meta["tuned"] == res.plan.meta["tuned"]
    t = back.meta["tuned"]
    assert (
        t["layer"] == res.layer and t["strength"] == res.strength and t["measured"]["kl"] == res.chosen["kl"]
    )
    text = render(summary(back))
    assert (
        f"tuned: layer {res.layer} strength {res.strength:g}" in text and "chosen by: steerfast.tune" in text
    )


def test_refuses_with_zero_budget(tiny):
    with pytest.raises(TuneRefused, match="every cell exceeds the damage budget") as info:
        _tune(tiny, budget=Budget(kl=0.0, ppl_ratio=0.0, rep=0.0))
    assert len(info.value.table) == 4


@pytest.mark.parametrize("fam", ["actadd", "sadi"])
def test_other_families(tiny, fam):
    try:
        res = _tune(tiny, fam)
        assert res.plan.method == fam
    except TuneRefused as exc:  # a random model may well show no effect: then the table says so
        assert len(exc.table) == 4


def test_both_signs_rows(tiny):
    try:
        res = _tune(tiny, both_signs=True)
        assert res.plan.meta["tuned"]["both_signs"]
        rows = res.table
    except TuneRefused as exc:
        rows = exc.table
    assert {r["strength"] for r in rows if "signs" not in r} == {2.0, 8.0, -2.0, -8.0}
    assert {r["strength"] for r in rows if r.get("signs") == "both"} == {2.0, 8.0}


@pytest.mark.parametrize(
    "eval_set,needle",
    [
        ([{"prompt": "a"}] * 2, "at least 5"),
        ([{"prompt": "a", "positive": " x"}] * 5, "only one of"),
        ([{"prompt": ""}] * 5, "non-empty string 'prompt'"),
        ([{"prompt": "abc"}] * 5, "nothing to measure"),
    ],
)
def test_bad_eval_set(tiny, eval_set, needle):
    m, t = tiny
    with pytest.raises(PlanError, match=needle):
        tune(m, t, family("caa")(m, t, pairs=PAIRS), eval_set, progress=False)


def test_bad_family_and_make_plan(tiny):
    m, t = tiny
    with pytest.raises(PlanError, match="unknown plan family 'nope'"):
        family("nope")
    with pytest.raises(PlanError, match="not a SteeringPlan"):
        tune(m, t, lambda layer: None, EVAL, layers=[1], strengths=[1.0], progress=False)


def test_caa_family_equals_recipe(tiny):
    """The family's one-pass vectors are recipes.caa's, layer by layer (fp32 rounding only)."""
    from steerfast.recipes import caa

    m, t = tiny
    make = family("caa")(m, t, pairs=PAIRS)
    for layer in (1, 2):
        want = caa(m, t, PAIRS, layer, coeff=1.0, progress=False)
        got = make(layer)
        assert got.interventions[0].header() == want.interventions[0].header()
        torch.testing.assert_close(
            got.interventions[0].tensor, want.interventions[0].tensor, atol=1e-5, rtol=1e-5
        )
