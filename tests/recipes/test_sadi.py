"""SADI recipe: planted signals are ranked first, global signed top-K, plans equal the hook
oracle, bad input raises; on the default model, the committed result is re-measured."""

import json
import math
from pathlib import Path

import pytest
import torch

import steerfast
from steerfast.errors import PlanError
from steerfast.recipes.sadi import mask_plan, mean_differences, sadi, top_k
from steerfast.recipes.sadi_baselines import fixed_vector_plan, random_mask, random_units
from steerfast.testing import tiny_model
from steerfast.tokens import left_padded

POS, NEG = 7, 9  # last token of positive / negative sequences in planted tests
PREFIXES = [[5, 11, 23], [40, 41], [3, 60, 61, 62, 90], [17], [100, 2, 8, 30]]
PAIRS = [(p + [POS], p + [NEG]) for p in PREFIXES]
RESULTS = Path(__file__).resolve().parents[2] / "docs" / "sadi_results.json"


class Plant:
    """Adds `value` to some columns of a module's input or output at the last position of
    every row whose last input token is POS (the positive side only)."""

    def __init__(self, model):
        self.model, self.handles, self.last = model, [], None
        self.handles.append(model.model.register_forward_pre_hook(self._ids, with_kwargs=True))

    def _ids(self, mod, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.last = ids[:, -1] == POS

    def _edit(self, t, cols, value):
        t = t.clone()
        t[self.last, -1, cols] += value
        return t

    def on_input(self, module, cols, value):
        self.handles.append(
            module.register_forward_pre_hook(lambda m, a: (self._edit(a[0], cols, value),) + tuple(a[1:]))
        )

    def on_output(self, module, cols, value):
        self.handles.append(module.register_forward_hook(lambda m, a, out: self._edit(out, cols, value)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def head_cols(model, head):
    d = model.config.hidden_size // model.config.num_attention_heads
    return slice(head * d, (head + 1) * d)


def scores_with(model, plant_fn):
    with Plant(model) as p:
        plant_fn(p)
        return mean_differences(model, None, PAIRS, batch_size=2, progress=False)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_planted_units_rank_first(arch):
    model = tiny_model(arch, seed=1)
    layers = model.model.layers
    s = scores_with(
        model,
        lambda p: (
            p.on_input(layers[1].self_attn.o_proj, head_cols(model, 2), 40.0),
            p.on_output(layers[2].mlp.act_fn, [17], 40.0),
            p.on_output(layers[0].mlp.down_proj, [5], 40.0),
        ),
    )
    assert top_k(s.scores["head"], 1) == [(1, 2)]
    assert top_k(s.scores["neuron"], 1) == [(2, 17)]
    assert top_k(s.scores["hidden"], 1) == [(0, 5)]
    assert s.scores["head"][1, 2].item() == pytest.approx(40.0, abs=2.0)
    # without the plant nothing stands out like that
    plain = mean_differences(model, None, PAIRS, progress=False)
    assert plain.scores["head"].abs().max().item() < 5.0
    assert s.scores["head"].shape == (3, 4) and s.scores["neuron"].shape == (3, 96)


def test_global_top_k_crosses_layers_and_is_signed():
    model = tiny_model("llama", seed=2)
    layers = model.model.layers
    s = scores_with(
        model,
        lambda p: (
            p.on_input(layers[0].self_attn.o_proj, head_cols(model, 1), 30.0),
            p.on_input(layers[2].self_attn.o_proj, head_cols(model, 3), 20.0),
            p.on_input(layers[1].self_attn.o_proj, head_cols(model, 0), -500.0),
        ),
    )
    assert top_k(s.scores["head"], 2) == [(0, 1), (2, 3)]
    # the large negative difference is ranked last, not first
    assert top_k(s.scores["head"], 12)[-1] == (1, 0)
    res = sadi(model, None, [], "head", k=2, delta=3.0, scores=s)
    assert sorted(iv.layer for iv in res.plan.interventions) == [0, 2]


def test_mask_plan_layout():
    model = tiny_model("llama", seed=3)
    plan = mask_plan(model, "head", [(2, 1), (2, 3), (0, 0)], 4.0)
    assert [iv.layer for iv in plan.interventions] == [0, 2]
    for iv in plan.interventions:
        assert (iv.site, iv.kind, iv.positions, iv.strength) == ("attn.heads", "scale", "prompt_last", 4.0)
    m2 = plan.interventions[1].tensor[0]
    assert m2.sum().item() == 32 and m2[16:32].eq(1).all() and m2[48:64].eq(1).all()
    assert plan.meta["official_multiplier"] == 5.0
    n = mask_plan(model, "neuron", [(1, 7)], 2.0, "from_prompt_end").interventions[0]
    assert (n.site, n.dim, n.positions, n.tensor.sum().item(), n.tensor[0, 7].item()) == (
        "mlp.neurons",
        96,
        "from_prompt_end",
        1.0,
        1.0,
    )
    assert mask_plan(model, "hidden", [(1, 7)], 2.0).interventions[0].site == "mlp.out"


def test_head_plan_scales_own_activation_by_one_plus_delta():
    """Independent oracle: a hand-written hook multiplying the head's slice at the last token."""
    model = tiny_model("llama", seed=4)
    delta, cols = 3.5, head_cols(model, 2)
    ids = torch.tensor([[5, 6, 7, 8, 9]])

    def pre(m, a):
        x = a[0].clone()
        x[:, -1, cols] *= 1 + delta
        return (x,)

    h = model.model.layers[1].self_attn.o_proj.register_forward_pre_hook(pre)
    with torch.no_grad():
        want = model(input_ids=ids).logits
    h.remove()
    with steerfast.patch(model, mask_plan(model, "head", [(1, 2)], delta)), torch.no_grad():
        got = model(input_ids=ids).logits
    assert (got - want).abs().max().item() <= 1e-5


def plans_for(model, tok, pairs, positions="prompt_last"):
    s = mean_differences(model, tok, pairs, batch_size=2, progress=False)
    return [
        sadi(model, tok, pairs, e, k=k, delta=d, positions=positions, scores=s).plan
        for e, k, d in (("head", 3, 4.0), ("neuron", 20, 4.0), ("hidden", 4, 2.0))
    ]


def assert_patched_equals_hooks(model, plan, ids, mask, pos):
    with torch.no_grad():
        base = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        with steerfast.patch(model, plan):
            fused = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        with steerfast.apply_hooks(model, plan):
            hooked = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    real = mask.bool()
    assert (fused - hooked)[real].abs().max().item() <= 1e-5
    assert (fused - base)[real].abs().max().item() > 1e-4, "the plan must change the logits"


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "qwen3"])
@pytest.mark.parametrize("positions", ["prompt_last", "from_prompt_end"])
def test_patched_equals_hooks_tiny(arch, positions):
    model = tiny_model(arch, seed=5)
    ids, mask, pos = left_padded([[5, 9, 17, 33, 2], [40, 41], [7, 7, 100, 3]])
    for plan in plans_for(model, None, PAIRS, positions):
        assert_patched_equals_hooks(model, plan, ids, mask, pos)


def test_baselines():
    model = tiny_model("llama", seed=6)
    s = mean_differences(model, None, PAIRS, progress=False)
    a, b = random_units(s.scores["head"], 5, seed=1), random_units(s.scores["head"], 5, seed=1)
    assert a == b and len(set(a)) == 5
    assert random_units(s.scores["head"], 5, seed=2) != a
    rnd = random_mask(model, s, "head", 5, 4.0, seed=1)
    assert sorted(rnd.meta["units"]) == sorted(list(u) for u in a)
    assert all(iv.kind == "scale" and iv.strength == 4.0 for iv in rnd.interventions)
    units = top_k(s.scores["hidden"], 3)
    fixed = fixed_vector_plan(model, s, "hidden", units, 10.0)
    for iv in fixed.interventions:
        assert (iv.kind, iv.site, iv.strength) == ("add", "mlp.out", 10.0)
        cols = [u for l, u in units if l == iv.layer]
        want = torch.zeros(64)
        want[cols] = s.site_diff["hidden"][iv.layer, cols]
        assert torch.equal(iv.tensor[0], want)


def test_bad_input_raises():
    model = tiny_model("llama", seed=7)
    s = mean_differences(model, None, PAIRS, progress=False)
    with pytest.raises(PlanError, match="at least one"):
        mean_differences(model, None, [])
    with pytest.raises(PlanError, match="tokenizes to nothing"):
        mean_differences(model, None, [([1, 2], [])])
    for k in (0, -1, 13, 2.0, True):
        with pytest.raises(PlanError, match="K must be"):
            sadi(model, None, [], "head", k=k, scores=s)
    with pytest.raises(PlanError, match="K must be"):
        random_mask(model, s, "hidden", 3 * 64 + 1, 1.0)
    for d in (math.nan, math.inf, -math.inf):
        with pytest.raises(PlanError, match="finite"):
            sadi(model, None, PAIRS, "neuron", k=2, delta=d, scores=s)
    with pytest.raises(PlanError, match="unknown SADI element"):
        sadi(model, None, PAIRS, "layer", scores=s)
    with pytest.raises(PlanError, match="steers at"):
        mask_plan(model, "head", [(0, 0)], 1.0, positions="all")


# --- the default model --------------------------------------------------------------------
SHORT_PAIRS = [
    ("The sky is blue", "The sky is green"),
    ("Two plus two is four", "Two plus two is five"),
    ("Fire is hot", "Fire is cold"),
]


@pytest.mark.slow
def test_default_model_patched_equals_hooks(default_model):
    model, tok = default_model
    rows = [
        tok("Water is", add_special_tokens=True)["input_ids"],
        tok("The capital of France is", add_special_tokens=True)["input_ids"],
    ]
    ids, mask, pos = left_padded(rows, tok.pad_token_id)
    for plan in plans_for(model, tok, SHORT_PAIRS):
        assert_patched_equals_hooks(model, plan, ids, mask, pos)


@pytest.mark.slow
def test_default_model_text_pair_that_tokenizes_to_nothing(default_model):
    model, tok = default_model
    with pytest.raises(PlanError, match="tokenizes to nothing"):
        mean_differences(model, tok, [("Fire is hot", "")], progress=False)


@pytest.mark.slow
def test_caa_vectors_match_caa_recipe(default_model):
    from steerfast.experiments.sadi import caa_plan
    from steerfast.recipes.caa import caa

    model, tok = default_model
    s = mean_differences(model, tok, SHORT_PAIRS, progress=False)
    ours = caa_plan(model, s, 12, 2.0).interventions[0]
    ref = caa(model, tok, SHORT_PAIRS, 12, 2.0, progress=False).interventions[0]
    assert ours.header() == ref.header()
    assert (ours.tensor - ref.tensor).abs().max().item() <= 1e-4 * max(1.0, ref.tensor.abs().max().item())


@pytest.mark.slow
def test_committed_sadi_head_result_is_reproduced(default_model):
    """Re-measures SADI-Head and no steering on a committed task's test items with the K, δ
    and mask from docs/sadi_results.json, and checks what the table claims (see report)."""
    from steerfast.data import load_jsonl
    from steerfast.evaluate import Accuracy, beats
    from steerfast.evaluate.multiple_choice import evaluate

    model, tok = default_model
    results = json.loads(RESULTS.read_text())
    n_test = results["config"]["test_items"]
    tasks = results["tasks"]

    def committed(task, method):
        r = tasks[task]["methods"][method]["test"]
        return Accuracy(r["correct"], r["total"])

    # the task where the table says SADI-Head wins, if any; else the cheapest one
    winners = [t for t in tasks if beats(committed(t, "sadi-head"), committed(t, "none"))]
    task = winners[0] if winners else "mc_facts"
    test = load_jsonl(task, "test")
    test = test[:n_test] if n_test else test
    p = tasks[task]["methods"]["sadi-head"]["params"]
    plan = mask_plan(model, "head", [tuple(u) for u in p["units"]], p["delta"])
    head = evaluate(model, tok, test, plan).accuracy
    none = evaluate(model, tok, test).accuracy
    assert (head.correct, head.total) == (committed(task, "sadi-head").correct, len(test))
    assert (none.correct, none.total) == (committed(task, "none").correct, len(test))
    assert beats(head, none) == bool(winners)
