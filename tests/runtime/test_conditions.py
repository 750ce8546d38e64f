"""Conditional plans: a per-request gate decided in the prefill, kept for the whole request.

Every check compares the gated runtime with the same rows run alone with the gate forced to
the value the condition gives them (plan.without_condition() = on, plan.ungated() = off), and
with the hook oracle. fp32 tiny models; patched vs oracle differ only by the order of fp32
sums inside the ops (<= 1e-5, the tolerance every runtime test uses).
"""

import pytest
import torch

import steerfast
from steerfast.conditions import Condition
from steerfast.errors import PlanError
from steerfast.plan import Intervention, SteeringPlan, describe
from steerfast.recipes.capture import residual_input
from steerfast.runtime.bank import SteeringBank
from steerfast.runtime.packed import PackedRows
from steerfast.steered_generation import Steer, generate
from steerfast.testing import TINY_ARCHS, tiny_model, tiny_tokenizer
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2, 7], [40, 41, 42], [7, 7, 100, 5], [1, 2, 3, 4, 5, 6], [9, 8, 7, 6], [60, 61]]
TOL = 1e-5


def _ivs(model, seed):
    g = torch.Generator().manual_seed(seed)
    D = model.config.hidden_size
    n = steerfast.adapters.get_adapter(model).site_dim(model, 2, "attn.heads")
    return [
        Intervention(0, "mlp.out", "add", torch.randn(D, generator=g), "all", 1.0),  # ungated, before
        Intervention(1, "attn.out", "add", torch.randn(D, generator=g), "from_prompt_end", 3.0),
        Intervention(2, "attn.heads", "scale", (torch.randn(n, generator=g) > 0).float(), "prompt_last", 2.0),
        Intervention(2, "mlp.out", "add", torch.randn(D, generator=g), "last", -2.0),
        Intervention(2, "attn.out", "add", torch.randn(D, generator=g), "all", 0.5),  # ungated, after
    ]


def _scores(model, rows, cond, pre_plan=None):
    """c · agg(h) per row at the condition's read point, from a plain forward per row."""
    out = []
    for r in rows:
        ids = torch.tensor([r])
        with torch.no_grad(), residual_input(model, cond.layer) as seen:
            if pre_plan is not None:
                with steerfast.apply_hooks(model, pre_plan):
                    model(input_ids=ids)
            else:
                model(input_ids=ids)
        h = seen[0][0].float()
        agg = h.mean(0) if cond.aggregate == "mean" else h[-1]
        out.append(float(agg @ cond.vector))
    return out


def _split_condition(model, rows, layer, seed, aggregate="mean", pre_plan=None, comparator=">"):
    """A condition whose threshold sits in the widest gap between the rows' scores."""
    g = torch.Generator().manual_seed(seed)
    c = Condition(layer, torch.randn(model.config.hidden_size, generator=g), 0.0, comparator, aggregate)
    s = sorted(_scores(model, rows, c, pre_plan))
    gaps = [(s[i + 1] - s[i], i) for i in range(1, len(s) - 2)]  # at least two on each side
    _, i = max(gaps)
    return Condition(layer, c.vector, (s[i] + s[i + 1]) / 2, comparator, aggregate)


def _gated_plan(model, seed=0, cond_layer=1, aggregate="mean"):
    base = SteeringPlan(_ivs(model, seed), "t")
    pre = SteeringPlan([base.interventions[0]], "pre")
    cond = _split_condition(model, ROWS, cond_layer, seed + 100, aggregate, pre)
    return base.when(cond, gated=[1, 2, 3]), [s > cond.threshold for s in _scores(model, ROWS, cond, pre)]


def _logits(model, rows):
    ids, mask, pos = left_padded(rows)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    return out, mask.bool()


def _alone(model, row, plan):
    ids = torch.tensor([row])
    with torch.no_grad():
        if plan is None:
            return model(input_ids=ids).logits[0]
        with steerfast.patch(model, plan):
            return model(input_ids=ids).logits[0]


def _forced(plan, on):
    return plan.without_condition() if on else plan.ungated()


# --- every tiny architecture: one module-scoped case per arch ------------------------------
PROMPTS = ["hello there", "a", "the quick brown fox", "xyzzy 42", "good food", "zz top"]
NEW = 4
MARGIN = 1e-4  # every row's score is this far from its threshold: fp32 sum order cannot flip it
CB_BROKEN = ("gpt2", "gpt_neox", "falcon")  # transformers' paged attention fails them, plain too


def _or_condition(model, rows, gates, pre, seed):
    """A "last"-token condition at layer 2 that turns on the g1-off row it scores highest
    (and maybe g1-on rows), so that `g1 | g2` differs from g1 and still leaves rows off."""
    g = torch.Generator().manual_seed(seed)
    c = Condition(2, torch.randn(model.config.hidden_size, generator=g), 0.0, ">", "last")
    s2 = _scores(model, rows, c, pre)
    off = sorted(s2[i] for i, on in enumerate(gates) if not on)
    return Condition(2, c.vector, (off[-1] + off[-2]) / 2, ">", "last"), s2


@pytest.fixture(scope="module", params=TINY_ARCHS)
def case(request):
    arch = request.param
    model, tok = tiny_model(arch, seed=2), tiny_tokenizer()
    model.generation_config.eos_token_id = None
    rows = [tok(p)["input_ids"] for p in PROMPTS]
    base = SteeringPlan(_ivs(model, 3), "t")
    pre = SteeringPlan([base.interventions[0]], "pre")
    cond = _split_condition(model, rows, 1, 103, "mean", pre)
    s1 = _scores(model, rows, cond, pre)
    plan = base.when(cond, gated=[1, 2, 3])
    gates = [s > cond.threshold for s in s1]
    # the "or" plan gates [2, 3]: intervention 1 is ungated there and changes what layer 2 reads
    pre_or = SteeringPlan(base.interventions[:2], "pre")
    cond2, s2 = _or_condition(model, rows, gates, pre_or, 7)
    plan_or = base.when(cond | cond2, gated=[2, 3])
    gates_or = [a or b > cond2.threshold for a, b in zip(gates, s2)]
    assert min(abs(s - cond.threshold) for s in s1) > MARGIN
    assert min(abs(s - cond2.threshold) for s, g in zip(s2, gates) if not g) > MARGIN  # g1 | g2
    assert gates_or != gates and not all(gates_or)
    on, off = [i for i, g in enumerate(gates) if g], [i for i, g in enumerate(gates) if not g]
    slots = [0] * len(rows)  # one on row unconditioned, one off row unsteered: slot 0 still mixes
    slots[on[0]], slots[off[0]] = 1, -1
    other = SteeringPlan(_ivs(model, 9)[1:], "plain")
    return dict(
        arch=arch,
        model=model,
        tok=tok,
        rows=rows,
        plan=plan,
        plan_or=plan_or,
        gates=gates,
        slots=slots,
        other=other,
    )


def _steers(c):
    """Per prompt: what the mixed batch runs, and what the same prompt runs alone (forced)."""
    mixed, alone = [], []
    for s, g in zip(c["slots"], c["gates"]):
        plan = None if s < 0 else c["other"] if s == 1 else c["plan"]
        mixed.append(None if plan is None else Steer(plan))
        forced = _forced(plan, g) if s == 0 else plan
        alone.append(None if forced is None else Steer(forced))
    return mixed, alone


def _gen_kwargs(cache):
    kw = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, return_ids=True)
    if cache == "static":
        kw["cache_implementation"] = "static"
    return kw


def test_hook_oracle_prefill_and_decode(case):
    """patch() == apply_hooks, one gate and an "or" of two, left-padded prefill and greedy
    decode on a DynamicCache and a StaticCache (logits of every step)."""
    model, tok = case["model"], case["tok"]
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    for p in (case["plan"], case["plan_or"]):
        with steerfast.apply_hooks(model, p):
            want, mask = _logits(model, case["rows"])
        with steerfast.patch(model, p):
            got, _ = _logits(model, case["rows"])
        assert (got - want)[mask].abs().max().item() <= TOL
        for cache in ("dynamic", "static"):
            kw = dict(max_new_tokens=NEW, do_sample=False, output_logits=True, return_dict_in_generate=True)
            kw["pad_token_id"] = 0
            if cache == "static":
                kw["cache_implementation"] = "static"
            with torch.no_grad():
                with steerfast.apply_hooks(model, p):
                    want = torch.stack(model.generate(**enc, **kw).logits)
                with steerfast.patch(model, p):
                    got = torch.stack(model.generate(**enc, **kw).logits)
            assert (got - want).abs().max().item() <= TOL


def test_mixed_batch_equals_each_row_alone_with_its_gate_forced(case):
    model, rows, plan, slots, gates = case["model"], case["rows"], case["plan"], case["slots"], case["gates"]
    with SteeringBank(model, slots=2) as bank:
        bank.load_all({0: plan, 1: case["other"]})
        bank.assign(slots)
        got, mask = _logits(model, rows)
    for b, (row, s) in enumerate(zip(rows, slots)):
        want = _alone(model, row, None if s < 0 else case["other"] if s == 1 else _forced(plan, gates[b]))
        assert (got[b][mask[b]] - want).abs().max().item() <= TOL
    in_slot = [b for b, s in enumerate(slots) if s == 0]
    for flip in (True, False):  # the forced gate matters on an off and an on row: the check can fail
        b = next(b for b in in_slot if gates[b] != flip)
        wrong = _alone(model, rows[b], _forced(plan, flip))
        assert (got[b][mask[b]] - wrong).abs().max().item() > 1e-3


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_generate_mixes_gated_and_plain_requests_like_each_alone(case, cache):
    model, tok = case["model"], case["tok"]
    mixed, alone = _steers(case)
    _, got = generate(model, tok, PROMPTS, mixed, **_gen_kwargs(cache))
    width = max(len(r) for r in case["rows"])
    for i, (p, s) in enumerate(zip(PROMPTS, alone)):
        _, ids = generate(model, tok, [p], [s], **_gen_kwargs(cache))
        assert got[i, width:].tolist() == ids[0, len(case["rows"][i]) :].tolist()


def _cb(model, rows, slot_of=None):
    """transformers' generate_batch on `rows`: (tokens, error) per request, in order. With
    slot_of (request index -> bank slot) the bank (already loaded) steers request by request."""
    from transformers import GenerationConfig

    from steerfast.serve.engine import cb_config

    gc = GenerationConfig(max_new_tokens=NEW, do_sample=False, eos_token_id=-1, pad_token_id=0)
    out = model.generate_batch(
        rows, generation_config=gc, continuous_batching_config=cb_config(2048, 256), progress_bar=False
    )
    return [(out[f"req_{i}"].generated_tokens, out[f"req_{i}"].error) for i in range(len(rows))]


def test_generate_batch_equals_each_request_alone_with_its_gate_forced(case):
    """Continuous batching (paged attention, the requests packed in one row) with the mixed
    batch's slots: token-identical to each prompt's solo generate with its gate forced. Where
    transformers' paged attention cannot run the architecture at all (CB_BROKEN), the steered
    run fails exactly as the plain one does, for every request."""
    model, tok, rows, slots = case["model"], case["tok"], case["rows"], case["slots"]
    with SteeringBank(model, slots=2) as bank:
        bank.load_all({0: case["plan"], 1: case["other"]})
        packed = PackedRows(bank)
        bank.packed_rows = packed
        packed.slot_of.update({f"req_{i}": s for i, s in enumerate(slots) if s >= 0})
        got = _cb(model, rows)
    if case["arch"] in CB_BROKEN:
        plain = _cb(model, rows)
        assert all(err and not toks for toks, err in plain)
        assert got == plain
        return
    assert all(err is None for _, err in got)
    plain = _cb(model, rows)
    on_rows = [b for b, s in enumerate(slots) if s == 0 and case["gates"][b]]
    assert any(got[b] != plain[b] for b in on_rows)  # the gated-in rows are steered: can fail
    _, alone = _steers(case)
    for (toks, _), p, r, s in zip(got, PROMPTS, rows, alone):
        _, ids = generate(model, tok, [p], [s], **_gen_kwargs("dynamic"))
        assert ids[0, len(r) :].tolist() == toks


def test_gate_is_decided_once_per_request_decode_never_flips_it():
    """Scored as a prompt, prompt + generated tokens would be gated off; the request stays on."""
    model, tok = tiny_model("llama", seed=4), tiny_tokenizer()
    model.generation_config.eos_token_id = None
    plan = SteeringPlan(_ivs(model, 5)[1:4], "t")
    prompt = "hello there"
    ids = tok(prompt)["input_ids"]
    probe = Condition(
        1, torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(8)), 0.0
    )
    kw = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False, return_ids=True)
    _, out = generate(model, tok, [prompt], [Steer(plan)], **kw)
    full = out[0].tolist()
    s_prompt, s_full = _scores(model, [ids, full], probe)
    assert abs(s_prompt - s_full) > 1e-3
    cmp = ">" if s_prompt > s_full else "<"
    cond = Condition(1, probe.vector, (s_prompt + s_full) / 2, cmp)
    gated = plan.when(cond)
    _, got = generate(model, tok, [prompt], [Steer(gated)], **kw)
    assert got[0].tolist() == full  # = the gate forced on for every step
    # the same tokens as a fresh prompt are gated off: a re-decided gate would differ
    with steerfast.patch(model, gated):
        again = model(input_ids=torch.tensor([full])).logits[0]
    assert (again - _alone(model, full, None)).abs().max().item() == 0.0


def test_compiled_fullgraph_equals_eager():
    torch._dynamo.reset()
    model = tiny_model("llama", seed=7)
    plan, _ = _gated_plan(model, seed=14)
    with steerfast.patch(model, plan):
        compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
        ids, mask, pos = left_padded(ROWS)
        with torch.no_grad():
            want = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            got = compiled(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            assert (got.logits - want.logits)[mask.bool()].abs().max().item() <= TOL
            nxt = want.logits[:, -1].argmax(-1, keepdim=True)
            mask2 = torch.cat([mask, torch.ones_like(nxt)], 1)
            pos2 = pos[:, -1:] + 1
            w2 = model(
                input_ids=nxt, attention_mask=mask2, position_ids=pos2, past_key_values=want.past_key_values
            )
            g2 = compiled(
                input_ids=nxt, attention_mask=mask2, position_ids=pos2, past_key_values=got.past_key_values
            )
        assert (g2.logits - w2.logits).abs().max().item() <= TOL
    torch._dynamo.reset()


def test_revert_is_exact_and_removes_the_read_hooks():
    model = tiny_model("llama", seed=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain, _ = _logits(model, ROWS)
    plan, _ = _gated_plan(model, seed=15)
    with steerfast.patch(model, plan):
        _logits(model, ROWS)
    after, _ = _logits(model, ROWS)
    assert torch.equal(plain, after)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    layers = steerfast.adapters.get_adapter(model).layer_modules(model)
    assert all(not layer._forward_pre_hooks for layer in layers)


def _packed_step(bank, requests, lens, positions, h_e0, slots=None):
    """One packed step driven by hand: the maps the engine step gets, with the read point fed
    a residual stream whose e0 component is h_e0 per token (everything else 0)."""
    from steerfast.runtime.packed import packed_row_maps

    sizes = [len(p) for p in positions]
    cu = torch.tensor([0] + list(torch.tensor(sizes).cumsum(0)), dtype=torch.int32)
    pos = torch.tensor([[q for p in positions for q in p]])
    n = pos.shape[1]
    slot, plen = torch.tensor((slots or [0] * len(requests)) + [-1]), torch.tensor(lens + [0])
    maps = packed_row_maps(cu, pos, len(requests), n, slot, plen, bank.lane_code, bank.lane_n, bank.entries)
    maps = bank.gates.packed_step(cu, pos, n, requests, slot, plen, maps)
    h = torch.zeros(1, n, bank.model.config.hidden_size)
    h[0, :, 0] = torch.tensor(h_e0, dtype=torch.float32)
    bank.gates._reader(bank.gates.points[0])(None, (h,), {})
    return pos[0].tolist(), bank.state.maps[0].tolist()


def _mean_gated_add():
    """A tiny llama and an add at layer 1 gated by the mean of h[..., 0] > 0 over the prompt."""
    model = tiny_model("llama", seed=12)
    e0 = torch.zeros(model.config.hidden_size)
    e0[0] = 1.0
    iv = Intervention(1, "attn.out", "add", torch.ones(model.config.hidden_size), "from_prompt_end", 1.0)
    return model, SteeringPlan([iv], "t").when(Condition(1, e0, 0.0, ">", "mean"))


def test_packed_gate_chunked_prefill_decode_and_re_prefill_keep_the_gate():
    model, plan = _mean_gated_add()
    with steerfast.patch(model, plan) as handle:
        bank = handle.bank
        # step 1: A's whole prompt (3 tokens, on); B's first chunk (2 of its 4 prompt tokens)
        _, m = _packed_step(bank, [("A", 1.0), ("B", 2.0)], [3, 4], [[0, 1, 2], [0, 1]], [1, 1, 1, -5, -5])
        assert m == [-1, -1, 0, -1, -1]  # A's prompt end steered; B undecided and before its end
        # step 2: A decodes (its h would say off); B's last chunk: mean (-5-5+9+9)/4 > 0, on
        _, m = _packed_step(bank, [("A", 1.0), ("B", 2.0)], [3, 4], [[3], [2, 3]], [-100, 9, 9])
        assert m == [0, -1, 0]
        # step 3: A evicted and re-prefilled (prompt + generated, h says off): the gate holds
        _, m = _packed_step(bank, [("A", 1.0)], [3], [[0, 1, 2, 3, 4]], [-100] * 5)
        assert m == [-1, -1, 0, 0, 0]
        # a new request reusing the id "A" (new stamp) is decided afresh: off
        _, m = _packed_step(bank, [("A", 7.0)], [2], [[0, 1]], [-1, -1])
        assert m == [-1, -1]
        # a one-step prefill of B's prompt decides as the two chunks did
        _, m = _packed_step(bank, [("C", 3.0)], [4], [[0, 1, 2, 3]], [-5, -5, 9, 9])
        assert m == [-1, -1, -1, 0]


def test_packed_soft_reset_keeps_a_decided_gate_and_restarts_an_undecided_prompt():
    """transformers re-queues an evicted request as a new RequestState (new stamp, `resumed`):
    its prompt, then its generated tokens, are prefilled again from position 0."""
    model, plan = _mean_gated_add()
    with steerfast.patch(model, plan) as handle:
        bank = handle.bank
        # A decided on, C decided off (3-token prompts); B's first 2 of 4 prompt tokens
        reqs = [("A", 1.0, False), ("C", 2.0, False), ("B", 3.0, False)]
        h = [1] * 3 + [-1] * 3 + [-5, -5]
        _, m = _packed_step(bank, reqs, [3, 3, 4], [[0, 1, 2], [0, 1, 2], [0, 1]], h)
        assert m == [-1, -1, 0, -1, -1, -1, -1, -1]
        # all three evicted and re-queued: A and C re-prefill prompt + 2 generated tokens whose
        # stream says the opposite; B's prompt comes back whole: mean (-5-5+9+9)/4 > 0, on
        # (without the restart its first chunk would count twice: -2/6 < 0, off)
        reqs = [("A", 4.0, True), ("C", 5.0, True), ("B", 6.0, True)]
        pos = [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3]]
        _, m = _packed_step(bank, reqs, [3, 3, 4], pos, [-100] * 5 + [100] * 5 + [-5, -5, 9, 9])
        assert m == [-1, -1, 0, 0, 0] + [-1] * 5 + [-1, -1, -1, 0]
        store = bank.gates._store
        assert (store.started, store.resumed) == (3, 3)
        # a new request reusing the id "A" (a new stamp, not re-queued) is decided afresh: off
        _, m = _packed_step(bank, [("A", 7.0, False)], [2], [[0, 1]], [-1, -1])
        assert m == [-1, -1] and store.started == 4


def test_packed_partial_prompt_sums_survive_a_load_into_another_slot():
    """A load re-lays the atoms out (slot 0's new condition takes column 0): a request in
    mid-prefill keeps what its first chunk read. Whole prompt: (-9-9+5+5)/4 < 0, off; its
    second chunk alone would say on."""
    model, plan = _mean_gated_add()
    D = model.config.hidden_size
    e0 = torch.zeros(D)
    e0[0] = 1.0
    iv2 = Intervention(2, "attn.out", "add", torch.ones(D), "from_prompt_end", 1.0)
    other = SteeringPlan([iv2], "o").when(Condition(2, e0, 0.0, "<", "last"))
    with SteeringBank(model, slots=2) as bank:
        bank.load(1, plan)
        _, m = _packed_step(bank, [("B", 1.0)], [4], [[0, 1]], [-9, -9], slots=[1])
        assert m == [-1, -1]
        bank.load(0, other)
        assert bank.gates._atom_ids[1][0] == 1  # B's condition moved to column 1
        _, m = _packed_step(bank, [("B", 1.0)], [4], [[2, 3]], [5, 5], slots=[1])
        assert m == [-1, -1]
        # the same second chunk for a request whose first chunk said on: on
        _, m = _packed_step(bank, [("C", 2.0)], [4], [[0, 1]], [9, 9], slots=[1])
        _, m = _packed_step(bank, [("C", 2.0)], [4], [[2, 3]], [5, 5], slots=[1])
        assert m[0] == -1 and m[1] >= 0


# --- the plan format ------------------------------------------------------------------------
def test_save_load_round_trip_and_describe(tmp_path):
    model = tiny_model("llama", seed=10)
    plan, _ = _gated_plan(model, seed=17)
    c2 = Condition(2, torch.ones(model.config.hidden_size), -0.5, "<", "last")
    plan = plan.when(plan.condition.conditions[0] & c2, gated=[2])
    plan.save(tmp_path / "p.safetensors")
    back = SteeringPlan.load(tmp_path / "p.safetensors")
    assert back.condition.op == "and" and back.condition.gated == (2,)
    for a, b in zip(plan.condition.conditions, back.condition.conditions):
        assert a.header() == b.header() and torch.equal(a.vector, b.vector)
    text = describe(back)
    assert "gate:" in text and " and " in text and "< -0.5" in text


def test_bad_conditional_plans_are_refused():
    model = tiny_model("llama", seed=11)
    ivs = _ivs(model, 0)
    v = torch.ones(model.config.hidden_size)
    with pytest.raises(PlanError, match="before the condition's read point"):
        SteeringPlan(ivs, "t").when(Condition(2, v, 0.0), gated=[1])
    with pytest.raises(PlanError, match="from the prompt's end on"):
        SteeringPlan(ivs, "t").when(Condition(1, v, 0.0), gated=[4])
    with pytest.raises(PlanError, match="comparator"):
        Condition(1, v, 0.0, ">=")
    with pytest.raises(PlanError, match="out of range"):
        SteeringPlan(ivs, "t").when(Condition(0, v, 0.0), gated=[9])
    with pytest.raises(PlanError, match="residual stream has size"):
        SteeringPlan(ivs[1:2], "t").when(Condition(1, torch.ones(3), 0.0)).validate(model)
    a = SteeringPlan(ivs[1:2], "a").when(Condition(1, v, 0.0))
    with pytest.raises(PlanError, match="both plans carry a condition"):
        a + a
    combined = SteeringPlan(ivs[:1], "b") + a
    assert combined.condition.gated == (1,)


def test_a_gated_ablation_equals_the_oracle_and_each_row_alone():
    # the two halves of issue 23 together: an ablate lane masked by the slot's gate, in the bank
    # beside an unconditioned ablation, prefill and decode, == hooks and == each row alone
    model = tiny_model("llama", seed=4)
    D = model.config.hidden_size
    g = torch.Generator().manual_seed(11)
    r = torch.randn(D, generator=g)
    r = r / r.norm()
    ivs = _ivs(model, 5)[:2] + [
        Intervention(2, "mlp.out", "ablate", r, "from_prompt_end", 1.0),
        Intervention(2, "mlp.out", "add", torch.randn(D, generator=g), "last", 1.5),
    ]
    base = SteeringPlan(ivs, "t")
    pre = SteeringPlan([base.interventions[0]], "pre")
    cond = _split_condition(model, ROWS, 1, 17, "mean", pre)
    plan = base.when(cond, gated=[1, 2])
    gates = [s > cond.threshold for s in _scores(model, ROWS, cond, pre)]
    assert any(gates) and not all(gates)
    with steerfast.apply_hooks(model, plan):
        want, mask = _logits(model, ROWS)
    with steerfast.patch(model, plan):
        got, _ = _logits(model, ROWS)
    assert (got - want)[mask].abs().max().item() <= TOL
    for b, row in enumerate(ROWS):
        alone = _alone(model, row, _forced(plan, gates[b]))
        assert (got[b][mask[b]] - alone).abs().max().item() <= TOL
    plain_ablate = SteeringPlan([Intervention(1, "attn.out", "ablate", r, "all", 1.0)], "abl")
    slots = [0, 1, 0, 1, 0, -1]
    with SteeringBank(model, slots=2) as bank:
        bank.load_all({0: plan, 1: plain_ablate})
        bank.assign(slots)
        got, mask = _logits(model, ROWS)
    for b, (row, s) in enumerate(zip(ROWS, slots)):
        want = _alone(model, row, None if s < 0 else plain_ablate if s == 1 else _forced(plan, gates[b]))
        assert (got[b][mask[b]] - want).abs().max().item() <= TOL
