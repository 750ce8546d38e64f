"""Which (row, position) activations each policy changes, across prefill and three decode steps.

Only the last layer's mlp.out is steered and the decode tokens are fixed, so every layer's
input is identical with and without steering: the recorded output differs exactly at the
steered cells, by the added vector.
"""

import pytest
import torch
from transformers import DynamicCache

import steerfast
from steerfast.plan import Intervention, SteeringPlan
from steerfast.testing import tiny_model
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2], [40, 41, 42]]  # row 1 is left padded by 2
DECODE = [[7, 8], [9, 10], [11, 12]]  # fixed tokens fed in three decode steps

EXPECTED = {  # policy: (changed prefill cells (row, col), rows changed in each decode step)
    "prefix:2": ({(0, 0), (0, 1), (1, 2), (1, 3)}, set()),
    "prompt_last": ({(0, 4), (1, 4)}, set()),
    "last": ({(0, 4), (1, 4)}, {0, 1}),
    "from_prompt_end": ({(0, 4), (1, 4)}, {0, 1}),
    "all": ({(0, c) for c in range(5)} | {(1, 2), (1, 3), (1, 4)}, {0, 1}),
}


def _record(model):
    ids, mask, pos = left_padded(ROWS)
    seen = []
    hook = model.model.layers[2].mlp.down_proj.register_forward_hook(
        lambda mod, args, out: seen.append(out.detach().clone())
    )
    cache = DynamicCache()
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache)
            m, p = mask, pos[:, -1:]
            for tokens in DECODE:
                m = torch.cat([m, torch.ones(2, 1, dtype=m.dtype)], 1)
                p = p + 1
                model(
                    input_ids=torch.tensor(tokens).view(2, 1),
                    attention_mask=m,
                    position_ids=p,
                    past_key_values=cache,
                )
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("policy", list(EXPECTED))
def test_policy_changes_exactly_the_expected_cells(policy):
    model = tiny_model("llama", seed=31)
    h = model.config.hidden_size
    n = int(policy.split(":")[1]) if policy.startswith("prefix") else 1
    plan = SteeringPlan([Intervention(2, "mlp.out", "add", torch.ones(n, h), policy, 1.0)])
    plain = _record(model)
    with steerfast.patch(model, plan):
        steered = _record(model)
    assert len(steered) == 1 + len(DECODE)
    diffs = [s - p for s, p in zip(steered, plain)]
    changed = [{tuple(rc) for rc in (d.abs().amax(-1) > 0).nonzero().tolist()} for d in diffs]
    want_prefill, want_decode = EXPECTED[policy]
    assert changed[0] == want_prefill
    for step in changed[1:]:
        assert step == {(r, 0) for r in want_decode}
    for d, cells in zip(diffs, changed):
        for r, c in cells:
            assert torch.allclose(d[r, c], torch.ones(h), atol=1e-5)


def test_last_and_from_prompt_end_differ_on_a_multi_token_continuation():
    """A continuation call with two new tokens: `last` steers only the final one."""
    model = tiny_model("llama", seed=32)
    h = model.config.hidden_size
    ids, mask, pos = left_padded(ROWS)
    out = {}
    for policy in ("last", "from_prompt_end"):
        plan = SteeringPlan([Intervention(2, "mlp.out", "add", torch.ones(h), policy, 1.0)])
        runs = []
        for steer in (False, True):
            seen = []
            hook = model.model.layers[2].mlp.down_proj.register_forward_hook(
                lambda mod, args, o: seen.append(o.detach().clone())
            )
            handle = steerfast.patch(model, plan) if steer else None
            cache = DynamicCache()
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache)
                m = torch.cat([mask, torch.ones(2, 2, dtype=mask.dtype)], 1)
                model(
                    input_ids=torch.tensor([[7, 8], [9, 10]]),
                    attention_mask=m,
                    position_ids=pos[:, -1:] + torch.tensor([[1, 2]]),
                    past_key_values=cache,
                )
            hook.remove()
            if handle:
                handle.revert()
            runs.append(seen[1])
        out[policy] = (runs[1] - runs[0]).abs().amax(-1) > 0
    assert out["last"].tolist() == [[False, True], [False, True]]
    assert out["from_prompt_end"].tolist() == [[True, True], [True, True]]
