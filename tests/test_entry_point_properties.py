"""Property test of the public entry points under bad input (hypothesis; bounded, seeded).

patch, SteeringBank.{load, load_all, assign, assign_all, set_strength, unload}, generate,
stream, Steer, the recipes (actadd, caa, sadi, laai), Intervention / SteeringPlan and
SteeringPlan.save/load get wrong types, non-finite and huge numbers, empty and ragged inputs
and Unicode. The only exceptions allowed out are steerfast's own (SteeringError and its
subclasses), or a TypeError/ValueError whose message names the argument; after every call the
model's parameters and a logits probe are bit-identical to before, and it is not left patched.

`python tests/test_entry_point_properties.py` (or `pytest -s`) prints the tally: cases run,
exceptions by type, models left changed.
"""

from __future__ import annotations

import collections

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerfast import patch
from steerfast.errors import SteeringError
from steerfast.plan import Intervention, SteeringPlan, model_hint
from steerfast.recipes import actadd, caa, laai, sadi
from steerfast.runtime.bank import SteeringBank
from steerfast.steered_generation import Steer, generate, stream
from steerfast.testing import tiny_model, tiny_tokenizer

EXAMPLES = 16  # per entry point (half for the recipes and stream); 12 entry points
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=EXAMPLES,
    suppress_health_check=list(HealthCheck),
)
PROBE = torch.tensor([[2, 4, 6, 8]])
TALLY = collections.Counter()

MODEL = tiny_model("llama", seed=3, num_hidden_layers=2)
TOK = tiny_tokenizer()
H = MODEL.config.hidden_size


def _snapshot():
    with torch.no_grad():
        logits = MODEL(input_ids=PROBE).logits.clone()
    return {k: v.detach().clone() for k, v in MODEL.state_dict().items()}, logits


BEFORE = _snapshot()

# --- strategies -------------------------------------------------------------------------------
huge = st.sampled_from([1e38, -1e30, 1e300, 2.0**64, 10**40, float("inf"), float("-inf"), float("nan")])
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), huge)
text = st.text(max_size=12)  # Unicode, empty included
wrong = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    text,
    st.binary(max_size=4),
    st.lists(st.integers(-3, 3), max_size=3),
    st.lists(st.lists(st.integers(0, 3), max_size=3), max_size=3),  # ragged
    st.dictionaries(text, st.integers(), max_size=2),
    st.just(torch.tensor(float("nan"))),
    st.just(torch.empty(0)),
    st.just(object()),
)
layer = st.one_of(st.integers(-3, 4), wrong)
site = st.one_of(
    st.sampled_from(["embed.out", "attn.heads", "attn.out", "mlp.neurons", "mlp.out"]), text, wrong
)
policy = st.one_of(
    st.sampled_from(["all", "last", "prompt_last", "from_prompt_end", "prefix:2", "prefix:0", "prefix:²"]),
    text.map(lambda s: "prefix:" + s),
    text,
    wrong,
)


@st.composite
def tensors(draw):
    shape = draw(st.sampled_from([(H,), (1, H), (2, H), (H + 1,), (0,), (1, 0), (2, 2, H)]))
    scale = draw(st.sampled_from([1.0, 1e30, 0.0, float("nan")]))
    t = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 9)))) * scale
    return t.to(draw(st.sampled_from([torch.float32, torch.float16, torch.int64])))


def _good_plan(strength=1.0):
    t = torch.randn(H, generator=torch.Generator().manual_seed(0))
    return SteeringPlan([Intervention(1, "attn.out", "add", t, "all", strength)], "good", model_hint(MODEL))


@st.composite
def plans(draw):
    """A SteeringPlan built from drawn fields, or whatever was drawn if that is refused."""
    try:
        iv = Intervention(
            draw(layer), draw(site), draw(st.sampled_from(["add", "scale", "mul"])), draw(tensors()),
            draw(policy), draw(numbers)
        )  # fmt: skip
        return SteeringPlan(
            [iv], "drawn", draw(st.one_of(st.just(model_hint(MODEL)), st.just({"hidden_size": 3})))
        )
    except SteeringError:
        return draw(st.one_of(wrong, st.just(_good_plan())))


steer_spec = st.one_of(plans(), st.builds(lambda p, s: (p, s), plans(), numbers), wrong)
prompts = st.one_of(st.lists(text, max_size=3), text, wrong, st.lists(wrong, min_size=1, max_size=2))


def _steer(spec):
    if isinstance(spec, tuple):
        return Steer(*spec)
    return spec


# --- the property -----------------------------------------------------------------------------
def _names_argument(exc: BaseException, names: tuple[str, ...]) -> bool:
    msg = str(exc)
    return any(n in msg for n in names)


def _check(call, names: tuple[str, ...]):
    """Run `call`; only allowed exceptions escape; the model is as before."""
    TALLY["cases"] += 1
    try:
        call()
        TALLY["ok"] += 1
    except SteeringError as exc:
        TALLY[type(exc).__name__] += 1
    except (TypeError, ValueError) as exc:
        TALLY[f"{type(exc).__name__} (names the argument)"] += 1
        assert _names_argument(exc, names), f"{type(exc).__name__} not naming {names}: {exc}"
    finally:
        handle = MODEL.__dict__.get("_steerfast_handle")
        if handle is not None:  # left patched: revert so the next case starts clean, and fail
            handle.revert()
            TALLY["left patched"] += 1
        params, logits = _snapshot()
        changed = any(not torch.equal(params[k], BEFORE[0][k]) for k in params) or not torch.equal(
            logits, BEFORE[1]
        )
        TALLY["models left changed"] += int(changed)
    assert handle is None, "the model was left patched"
    assert not changed, "the model's parameters or logits changed"


def _patch_and_probe(plan):
    with patch(MODEL, plan):
        with torch.no_grad():
            out = MODEL(input_ids=PROBE).logits
        assert torch.isfinite(out).all(), "an accepted plan gave non-finite logits"


@settings(**SETTINGS)
@given(plans())
def test_patch(plan):
    _check(lambda: _patch_and_probe(plan), ("plan", "SteeringPlan"))


@settings(**SETTINGS)
@given(layer, site, st.sampled_from(["add", "scale"]), tensors(), policy, numbers)
def test_intervention_and_plan(l, s, k, t, p, v):
    _check(
        lambda: SteeringPlan([Intervention(l, s, k, t, p, v)]),
        ("layer", "site", "tensor", "positions", "strength"),
    )


@settings(**SETTINGS)
@given(st.one_of(st.integers(-2, 3), wrong), st.one_of(plans(), st.none()), st.one_of(numbers, wrong))
def test_bank_load_and_set_strength(slot, plan, strength):
    def call():
        with SteeringBank(MODEL, 2) as bank:
            bank.load(slot, plan)
            bank.set_strength(slot, strength)
            bank.load_all({0: plan, 1: None})
            bank.unload(slot)

    _check(call, ("slot", "plan", "strength"))


@settings(**SETTINGS)
@given(
    st.one_of(wrong, st.lists(st.one_of(st.integers(-3, 3), wrong), max_size=4)),
    st.one_of(st.integers(-2, 3), wrong),
)
def test_bank_assign(rows, slot):
    def call():
        with SteeringBank(MODEL, 2) as bank:
            bank.load(0, _good_plan())
            bank.assign(rows)
            with torch.no_grad():
                MODEL(input_ids=PROBE.expand(len(rows) if isinstance(rows, list) and rows else 1, -1))
            bank.assign_all(slot)

    _check(call, ("row slots", "slot"))


@settings(**SETTINGS)
@given(prompts, st.one_of(st.none(), st.lists(steer_spec, max_size=3), steer_spec))
def test_generate(ps, steer):
    def call():
        steer_list = [_steer(s) for s in steer] if isinstance(steer, list) else _steer(steer)
        generate(MODEL, TOK, ps, steer_list, max_new_tokens=2)

    _check(call, ("prompt", "steer", "Steer"))


@settings(**{**SETTINGS, "max_examples": EXAMPLES // 2})
@given(prompts, steer_spec)
def test_stream(p, steer):
    _check(lambda: list(stream(MODEL, TOK, p, _steer(steer), max_new_tokens=2)), ("prompt", "steer", "Steer"))


@settings(**SETTINGS)
@given(st.one_of(plans(), wrong), st.one_of(numbers, wrong, st.none()), st.one_of(policy, st.none()))
def test_steer(plan, strength, positions):
    _check(lambda: Steer(plan, strength, positions).resolved(), ("Steer", "strength", "positions"))


@settings(**{**SETTINGS, "max_examples": EXAMPLES // 2})
@given(st.one_of(text, wrong), st.one_of(text, wrong), layer, st.one_of(numbers, wrong))
def test_actadd(pos, neg, l, coeff):
    _check(
        lambda: actadd(MODEL, TOK, pos, neg, l, coeff), ("positive", "negative", "layer", "coeff", "strength")
    )


pairs = st.one_of(
    wrong,
    st.lists(st.one_of(st.tuples(text, text), st.tuples(text), wrong), max_size=2),
)


@settings(**{**SETTINGS, "max_examples": EXAMPLES // 2})
@given(pairs, layer, st.one_of(numbers, wrong), st.one_of(policy, st.none()))
def test_caa(data, l, coeff, positions):
    kw = {} if positions is None else {"positions": positions}
    _check(
        lambda: caa(MODEL, TOK, data, layer=l, coeff=coeff, progress=False, **kw),
        ("pair", "layer", "coeff", "positions", "strength"),
    )


@settings(**{**SETTINGS, "max_examples": EXAMPLES // 2})
@given(pairs, st.one_of(numbers, wrong), st.one_of(st.integers(-1, 3), wrong))
def test_sadi(data, delta, k):
    _check(lambda: sadi(MODEL, TOK, data, k=k, delta=delta, progress=False), ("pair", "delta", "k", "δ", "K"))


@settings(**{**SETTINGS, "max_examples": EXAMPLES // 2})
@given(
    pairs,
    st.one_of(st.just([0]), wrong),
    st.one_of(st.integers(0, 3), wrong),
    st.one_of(numbers, wrong),
    st.one_of(st.integers(0, 2), wrong),
)
def test_laai(demos, layers, steps, lr, seed):
    _check(
        lambda: laai(MODEL, TOK, demos, layers=layers, steps=steps, lr=lr, seed=seed, progress=False),
        ("demo", "layers", "steps", "lr", "seed"),
    )


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.one_of(text, st.integers()), inner, max_size=3),
        st.sets(st.integers(), max_size=2),
    ),
    max_leaves=6,
)


@settings(**SETTINGS)
@given(meta=st.dictionaries(st.one_of(text, st.integers()), json_values, max_size=3))
def test_save_load_round_trips_or_refuses(tmp_path_factory, meta):
    path = tmp_path_factory.mktemp("plan") / "p.safetensors"

    def call():
        plan = SteeringPlan(_good_plan().interventions, "good", model_hint(MODEL), meta)
        plan.save(path)
        back = SteeringPlan.load(path)
        assert back.meta == meta and type(back.meta) is dict, (back.meta, meta)  # exact, or refused
        assert all(torch.equal(a.tensor, b.tensor) for a, b in zip(back.interventions, plan.interventions))

    _check(call, ("meta",))


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nentry-point properties:", dict(TALLY))


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
