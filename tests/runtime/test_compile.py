"""torch.compile(fullgraph=True) over a patched model: no graph break, equals eager, no recompiles."""

import torch
from torch._dynamo.testing import CompileCounterWithBackend

import steerfast
from steerfast.testing import random_plan, tiny_model
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2, 7], [40, 41, 42], [7, 7, 100, 5], [1, 2, 3, 4, 5, 6]]


def _forward(fn, ids, mask, pos):
    with torch.no_grad():
        return fn(input_ids=ids, attention_mask=mask, position_ids=pos).logits


def test_compiled_bank_equals_eager_without_recompiling():
    torch._dynamo.reset()
    model = tiny_model("llama", seed=41)
    ids, mask, pos = left_padded(ROWS)
    plan_a, plan_b = random_plan(model, seed=1), random_plan(model, seed=2)
    counter = CompileCounterWithBackend("aot_eager")
    with steerfast.SteeringBank(model, slots=4) as bank:
        bank.load_all({0: plan_a, 1: plan_a.with_strength(-1.0), 2: plan_b})
        compiled = torch.compile(model, backend=counter, fullgraph=True)
        batches = [([0, 1, 2, -1], None), ([2, 2, 0, 1], (0, 3.0)), ([-1, 0, 1, 2], (2, -0.5))]
        outputs = []
        for slots, strength in batches:
            bank.assign(slots)
            if strength is not None:
                bank.set_strength(*strength)
            got = _forward(compiled, ids, mask, pos)
            want = _forward(model, ids, mask, pos)
            assert (got - want).abs().max().item() <= 1e-5
            outputs.append(got)
        assert counter.frame_count == 1, "new slots and strengths must not recompile"
        assert not torch.equal(outputs[0], outputs[1])
    torch._dynamo.reset()


def test_compiled_patch_inductor_equals_eager():
    torch._dynamo.reset()
    model = tiny_model("qwen2", seed=42)
    ids, mask, pos = left_padded(ROWS)
    with steerfast.patch(model, random_plan(model, seed=3)):
        compiled = torch.compile(model, fullgraph=True)
        got = _forward(compiled, ids, mask, pos)
        want = _forward(model, ids, mask, pos)
    assert (got - want)[mask.bool()].abs().max().item() <= 1e-5
    torch._dynamo.reset()
