"""HF tensor parallelism under real torchrun processes (gloo on CPU): each rank's steered
logits equal the single-process steered model, prefill and decode, for plans touching all
five sites, patched and with the plain-hook oracle (apply_hooks). Input-side tables are sliced
to the rank's shard (one function, runtime/shard.py, for both); output-side edits land after
the row-parallel all-reduce (counted once, not world_size times)."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import steerfast
from steerfast.testing import random_plan, tiny_model
from steerfast.tokens import left_padded

WORKER = Path(__file__).with_name("tp_worker.py")
ROWS = [[5, 9, 17, 33, 2, 7, 11, 64, 3], [40, 41, 42, 43]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("arch", ["llama", "gemma2"])
def test_tensor_parallel_ranks_equal_single_process(arch, tmp_path):
    model = tiny_model(arch, seed=1)
    model.save_pretrained(tmp_path / "model")
    plan = random_plan(model, seed=2)
    sites = {iv.site for iv in plan.interventions}
    assert sites == {"embed.out", "attn.heads", "attn.out", "mlp.neurons", "mlp.out"}
    plan.save(tmp_path / "plan.safetensors")
    ids, mask, pos = left_padded(ROWS)
    torch.save({"ids": ids, "mask": mask, "pos": pos}, tmp_path / "batch.pt")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(WORKER),
        str(tmp_path / "model"),
        str(tmp_path / "plan.safetensors"),
        str(tmp_path / "batch.pt"),
        str(tmp_path / "out"),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

    kw = dict(
        attention_mask=mask,
        max_new_tokens=6,
        min_new_tokens=6,
        do_sample=False,
        pad_token_id=0,
        output_logits=True,
        return_dict_in_generate=True,
    )
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        with steerfast.patch(model, plan):
            want = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
            gen = model.generate(ids, **kw)
    real = mask.bool()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"out.rank{rank}.pt")
        assert (got["plain"] - plain)[real].abs().max().item() <= 1e-5, "unsteered TP == single process"
        assert (got["prefill"] - want)[real].abs().max().item() <= 1e-5
        assert (got["decode"] - torch.stack(gen.logits)).abs().max().item() <= 1e-5
        assert torch.equal(got["sequences"], gen.sequences)
        # the hook oracle under TP: input-side tables sliced to the rank's shard like the runtime's
        assert (got["hooks_prefill"] - want)[real].abs().max().item() <= 1e-5, "apply_hooks prefill"
        assert (got["hooks_decode"] - torch.stack(gen.logits)).abs().max().item() <= 1e-5
        assert (got["hooks_prefill"] - got["prefill"])[real].abs().max().item() <= 1e-5
        assert torch.equal(got["hooks_sequences"], gen.sequences)
        assert (got["after"] - plain)[real].abs().max().item() <= 1e-5, "revert under TP"
        assert (got["prefill"] - got["plain"])[real].abs().max().item() > 1e-2
        kinds = {k["module"]: k["realisation"] for k in got["kinds"]}
        assert kinds["model.layers.2.self_attn.o_proj"] == "wrapped", "sharded: no fast path"
