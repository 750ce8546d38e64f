"""Decode steps with an ablation run the fused in-place op (runtime/decode.py, Dense.apply_):
patch() (rows = 0: one entry on every row) and a bank with a distinct slot per row (rows = B,
including a row on no slot) equal the hook oracle and the row-map (prefill) realisation of the
same decode steps, on Dynamic and Static caches, in fp32 and fp64; the op is what runs (counted
by a dispatch mode, with no extra aten arithmetic); under torch.compile the decomposed path runs
(no custom op in the graph) and equals eager."""

import pytest
import torch
from helpers import unit
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import StaticCache

import steerfast
from steerfast.plan import Intervention, SteeringPlan
from steerfast.runtime import bank as bank_module
from steerfast.testing import tiny_model
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2, 7, 11], [40, 41, 42, 43], [7, 7, 100], [90, 12, 13, 14, 15]]
NEW = 5
ABLATE = torch.ops.steerfast.steer_ablate_.default

pytestmark = pytest.mark.usefixtures("fused_backend")


def composed_plan(model, seed=0):
    """Ablation composed with scale + add: [scale, add, ablate] at attn.out (one op step),
    [ablate, add, scale] at mlp.out (an ablate step, then a scale/shift step), strengths 0.5,
    1, 2, and a prompt_last ablation (never selected in decode)."""
    d = model.config.hidden_size
    g = torch.Generator().manual_seed(seed)
    r1, r2 = unit(d, seed + 1), unit(d, seed + 2)
    ivs = [
        Intervention(0, "embed.out", "ablate", r1, "all", 1.0),
        Intervention(0, "attn.out", "scale", (torch.rand(d, generator=g) > 0.5).float(), "all", -0.7),
        Intervention(0, "attn.out", "add", torch.randn(d, generator=g), "from_prompt_end", 0.7),
        Intervention(0, "attn.out", "ablate", r1, "from_prompt_end", 0.5),
        Intervention(0, "mlp.out", "ablate", r2, "all", 2.0),
        Intervention(0, "mlp.out", "add", torch.randn(d, generator=g), "last", 0.4),
        Intervention(0, "mlp.out", "scale", torch.rand(d, generator=g), "all", 0.3),
        Intervention(1, "mlp.out", "ablate", r1, "last", 1.0),
        Intervention(1, "attn.out", "ablate", r2, "prompt_last", 1.0),
    ]
    return SteeringPlan(ivs, "composed")


def plans(model):
    d = model.config.hidden_size
    return [
        SteeringPlan.ablate_everywhere(model, unit(d, 9)),
        composed_plan(model, 0),
        composed_plan(model, 5),
    ]


def generate(model, ids, mask, cache):
    kw = dict(attention_mask=mask, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, pad_token_id=0)
    kw.update(output_logits=True, return_dict_in_generate=True)
    if cache == "static":
        kw["past_key_values"] = StaticCache(config=model.config, max_cache_len=ids.shape[1] + NEW)
    with torch.no_grad():
        return model.generate(ids, **kw)


def oracle(model, plan_list, row_slots, ids, mask, cache):
    """Per row, every step's logits under the hooks of the row's own plan (or unsteered)."""
    runs = {}
    for s in sorted(set(row_slots)):
        if s < 0:
            runs[s] = generate(model, ids, mask, cache)
        else:
            with steerfast.apply_hooks(model, plan_list[s]):
                runs[s] = generate(model, ids, mask, cache)
    seqs = torch.stack([runs[s].sequences[r] for r, s in enumerate(row_slots)])
    logits = [torch.stack([runs[s].logits[t][r] for r, s in enumerate(row_slots)]) for t in range(NEW)]
    return seqs, logits


def steered(model, plan_list, row_slots, ids, mask, cache):
    """The same generation under patch() (row_slots None) or a bank with row_slots."""
    if row_slots is None:
        with steerfast.patch(model, plan_list[0]):
            return generate(model, ids, mask, cache)
    with steerfast.SteeringBank(model, slots=len(plan_list)) as bank:
        bank.load_all(dict(enumerate(plan_list)))
        bank.assign(row_slots)
        out = generate(model, ids, mask, cache)
        assert bank._decode_key == ("rows", tuple(row_slots)), "the decode steps must take the dense path"
        return out


def row_map_path(monkeypatch):
    """Decode steps take the row maps and per-lane row ops (the prefill's realisation)."""
    monkeypatch.setattr(bank_module, "decode_key", lambda *a: None)


def assert_close(got, want, what, tol=1e-5):
    assert torch.equal(got.sequences, want[0]), what
    assert len(got.logits) == NEW
    for step, (a, b) in enumerate(zip(got.logits, want[1])):
        diff = (a.double() - b.double()).abs().max().item()
        assert diff <= tol, f"{what} step {step}: {diff}"


@pytest.mark.parametrize("arch", ["llama", "gpt2"])  # fast (nn.Linear) and wrapped (Conv1D) sites
@pytest.mark.parametrize("cache", ["dynamic", "static"])
@pytest.mark.parametrize("which", ["patch", "bank"])
def test_decode_ablation_equals_hooks_and_row_maps(arch, cache, which, monkeypatch):
    model = tiny_model(arch, seed=17)
    ids, mask, _ = left_padded(ROWS)
    p = plans(model)
    cases = [([p[0]], None), ([p[1]], None)] if which == "patch" else [(p, [0, 1, -1, 2]), (p, [2, 0, 0, 1])]
    want = [oracle(model, ps, rows or [0] * len(ROWS), ids, mask, cache) for ps, rows in cases]
    got = [steered(model, ps, rows, ids, mask, cache) for ps, rows in cases]
    row_map_path(monkeypatch)
    by_maps = [steered(model, ps, None, ids, mask, cache) if rows is None else None for ps, rows in cases]
    for i, (ps, rows) in enumerate(cases):
        if rows is not None:  # the bank's own decode key check would fail on the row-map path
            with steerfast.SteeringBank(model, slots=len(ps)) as bank:
                bank.load_all(dict(enumerate(ps)))
                bank.assign(rows)
                by_maps[i] = generate(model, ids, mask, cache)
    base = generate(model, ids, mask, cache)
    for i, (ps, rows) in enumerate(cases):
        what = (arch, cache, which, rows)
        assert_close(got[i], want[i], ("hooks",) + what)
        assert_close(got[i], (by_maps[i].sequences, by_maps[i].logits), ("row maps",) + what)
        moved = max((a - b).abs().max().item() for a, b in zip(got[i].logits, base.logits))
        assert moved > 1e-3, f"the plan must change the decode logits: {what}"


def greedy(model, ids, mask):
    """Prefill + NEW greedy steps by hand: the model's own (fp64) logits, which generate() casts."""
    out, steps = None, []
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True)
        for _ in range(NEW):
            steps.append(out.logits[:, -1])
            nxt = out.logits[:, -1:].argmax(-1)
            mask = torch.cat([mask, torch.ones(mask.shape[0], 1, dtype=mask.dtype)], 1)
            out = model(input_ids=nxt, attention_mask=mask, past_key_values=out.past_key_values)
    steps.append(out.logits[:, -1])
    return torch.stack(steps)


def test_fp64_decode_ablation_equals_hooks_and_row_maps(monkeypatch):
    """fp64 rows run the reference behind the ops seam, in fp64, with the fp32 tables."""
    model = tiny_model("llama", seed=18, dtype=torch.float64)
    ids, mask, _ = left_padded(ROWS)
    p = plans(model)
    rows = [1, -1, 0, 2]
    want = []
    for s in rows:
        if s < 0:
            want.append(greedy(model, ids, mask))
        else:
            with steerfast.apply_hooks(model, p[s]):
                want.append(greedy(model, ids, mask))
    want = torch.stack([w[:, r] for r, w in enumerate(want)], 1)
    with steerfast.SteeringBank(model, slots=3) as bank:
        bank.load_all(dict(enumerate(p)))
        bank.assign(rows)
        got = greedy(model, ids, mask)
        assert bank._decode_key == ("rows", tuple(rows))
    with steerfast.patch(model, p[1]):
        got_patch = greedy(model, ids, mask)
    with steerfast.apply_hooks(model, p[1]):
        want_patch = greedy(model, ids, mask)
    with steerfast.patch(model, p[0]):
        got_ablate = greedy(model, ids, mask)
    row_map_path(monkeypatch)
    with steerfast.SteeringBank(model, slots=3) as bank:
        bank.load_all(dict(enumerate(p)))
        bank.assign(rows)
        maps = greedy(model, ids, mask)
    with steerfast.patch(model, p[0]):
        maps_ablate = greedy(model, ids, mask)
    assert got.dtype == torch.float64
    assert (got - want).abs().max().item() <= 1e-5
    assert (got_patch - want_patch).abs().max().item() <= 1e-5
    # ablation alone: the same fp64 arithmetic on both paths
    assert (got_ablate - maps_ablate).abs().max().item() <= 1e-12
    # composed: the decode tables fold scale / add of different policies (different lanes of
    # the row maps) into one fp32 (scale, shift), which rounds at fp32's level (~5e-8 here)
    assert (got - maps).abs().max().item() <= 1e-6


class OpCounts(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls: list = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append((func, args[0].shape if args and isinstance(args[0], torch.Tensor) else None))
        return func(*args, **(kwargs or {}))

    def count(self, func):
        return sum(1 for f, _ in self.calls if f == func)


def decode_step_ops(model, ids, mask):
    """The ops of one decode step after an (uncounted) prefill."""
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True)
        nxt = out.logits[:, -1:].argmax(-1)
        m2 = torch.cat([mask, torch.ones(mask.shape[0], 1, dtype=mask.dtype)], 1)
        with OpCounts() as mode:
            logits = model(input_ids=nxt, attention_mask=m2, past_key_values=out.past_key_values).logits
    return mode, logits


@pytest.mark.parametrize("which", ["patch", "bank"])
def test_decode_step_runs_the_fused_op_and_no_decomposed_arithmetic(which):
    model = tiny_model("llama", seed=19)
    ids, mask, _ = left_padded(ROWS)
    layers = model.config.num_hidden_layers
    plan = SteeringPlan.ablate_everywhere(model, unit(model.config.hidden_size, 3))
    base, _ = decode_step_ops(model, ids, mask)
    if which == "patch":
        handle = steerfast.patch(model, plan)
    else:
        handle = steerfast.SteeringBank(model, slots=2)
        handle.load_all(
            {0: plan, 1: SteeringPlan.ablate_everywhere(model, unit(model.config.hidden_size, 4))}
        )
        handle.assign([0, 1, -1, 0])
    with handle:
        mode, _ = decode_step_ops(model, ids, mask)
    ablates = [shape for f, shape in mode.calls if f == ABLATE]
    assert ablates == [torch.Size([len(ROWS), model.config.hidden_size])] * (1 + 2 * layers)
    # Dense.apply's decomposition (mul, sum, sub, copies) is gone: the step's aten arithmetic
    # is the unsteered step's, plus the clone of the embedding output (a wrapped site)
    for op in (torch.ops.aten.sum.dim_IntList, torch.ops.aten.mul.Tensor, torch.ops.aten.sub.Tensor):
        assert mode.count(op) == base.count(op), op
    assert mode.count(torch.ops.aten.copy_.default) == base.count(torch.ops.aten.copy_.default)


def test_compiled_decode_with_ablation_has_no_custom_op_and_equals_eager():
    torch._dynamo.reset()
    model = tiny_model("llama", seed=20, num_hidden_layers=2)
    plan = composed_plan(model, 2)
    b, p, new = 3, 6, 3
    ids = torch.randint(3, 100, (b, p), generator=torch.Generator().manual_seed(0))
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    def decode(fn):
        cache = StaticCache(config=model.config, max_cache_len=p + new + 1)
        outs = []
        with torch.no_grad():
            o = fn(input_ids=ids, past_key_values=cache, cache_position=torch.arange(p), use_cache=True)
            for i in range(new):
                outs.append(o.logits[:, -1])
                o = fn(
                    input_ids=o.logits[:, -1:].argmax(-1),
                    past_key_values=cache,
                    cache_position=torch.tensor([p + i]),
                    use_cache=True,
                )
            outs.append(o.logits[:, -1])
        return torch.stack(outs)

    with steerfast.apply_hooks(model, plan):
        want = decode(model)
    with steerfast.patch(model, plan):
        eager = decode(model)
        compiled = decode(torch.compile(model, backend=backend, fullgraph=True))
    torch._dynamo.reset()
    assert graphs
    targets = [str(n.target) for gm in graphs for n in gm.graph.nodes if n.op == "call_function"]
    assert not [t for t in targets if "steerfast" in t]
    assert (eager - want).abs().max().item() <= 1e-5
    assert (compiled - eager).abs().max().item() <= 1e-5


def grad_step(model, ids, mask, weight):
    """Prefill (no grad), then one decode step with grad enabled: its logits, and the gradient
    of a fixed linear function of them with respect to `weight`."""
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True)
    nxt = out.logits[:, -1:].argmax(-1)
    m2 = torch.cat([mask, torch.ones(ids.shape[0], 1, dtype=mask.dtype)], 1)
    model.zero_grad()
    logits = model(input_ids=nxt, attention_mask=m2, past_key_values=out.past_key_values).logits
    (logits * torch.linspace(-1, 1, logits.shape[-1])).sum().backward()
    return logits.detach()[:, -1], weight.grad.clone()


@pytest.mark.parametrize("which", ["patch", "bank"])
def test_decode_step_with_grad_enabled_matches_hooks_values_and_gradients(which):
    """With grad enabled the in-place op runs under its autograd Function: a decode step's
    logits and a weight's gradient equal the hooks' (rows = 0 and rows = B)."""
    model = tiny_model("llama", seed=21)
    ids, mask, _ = left_padded(ROWS)
    p = plans(model)
    rows = [1] * len(ROWS) if which == "patch" else [1, -1, 0, 2]
    weight = model.model.layers[0].self_attn.o_proj.weight
    if which == "patch":
        with steerfast.patch(model, p[1]):
            logits, grad = grad_step(model, ids, mask, weight)
    else:
        with steerfast.SteeringBank(model, slots=3) as bank:
            bank.load_all(dict(enumerate(p)))
            bank.assign(rows)
            logits, grad = grad_step(model, ids, mask, weight)
            assert bank._decode_key == ("rows", tuple(rows))
    # the loss is a sum over rows, so its gradient is the sum of each row's alone
    want_grad = torch.zeros_like(weight)
    for r, s in enumerate(rows):
        if s < 0:
            lg, g = grad_step(model, ids[r : r + 1], mask[r : r + 1], weight)
        else:
            with steerfast.apply_hooks(model, p[s]):
                lg, g = grad_step(model, ids[r : r + 1], mask[r : r + 1], weight)
        assert (logits[r] - lg[0]).abs().max().item() <= 1e-5, r
        want_grad += g
    assert (grad - want_grad).abs().max().item() <= 1e-5 * max(1.0, want_grad.abs().max().item())
