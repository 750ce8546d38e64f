"""Run by `torchrun --nproc_per_node 2` from test_tensor_parallel.py: load a saved model with HF
tensor parallelism, steer it with a saved plan — patched, then with the plain-hook oracle
(apply_hooks) — and write each rank's logits (prefill and decode steps) so the test can compare
both with the single-process steered model."""

import sys
import warnings

import torch
import torch.distributed as dist

import steerfast
from steerfast.plan import SteeringPlan


def main(model_dir: str, plan_path: str, batch_path: str, out_prefix: str) -> None:
    from transformers import AutoModelForCausalLM
    from transformers.distributed import DistributedConfig

    warnings.filterwarnings("ignore")
    dist.init_process_group("gloo")
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, distributed_config=DistributedConfig(tp_size=2), dtype=torch.float32
    ).eval()
    batch = torch.load(batch_path)
    plan = SteeringPlan.load(plan_path)
    kw = dict(
        attention_mask=batch["mask"],
        max_new_tokens=6,
        min_new_tokens=6,
        do_sample=False,
        pad_token_id=0,
        output_logits=True,
        return_dict_in_generate=True,
    )
    with torch.no_grad():
        plain = model(input_ids=batch["ids"], attention_mask=batch["mask"], position_ids=batch["pos"]).logits
        with steerfast.patch(model, plan) as handle:
            prefill = model(
                input_ids=batch["ids"], attention_mask=batch["mask"], position_ids=batch["pos"]
            ).logits
            gen = model.generate(batch["ids"], **kw)
            kinds = handle.describe()
        with steerfast.apply_hooks(model, plan):
            hooks_prefill = model(
                input_ids=batch["ids"], attention_mask=batch["mask"], position_ids=batch["pos"]
            ).logits
            hooks_gen = model.generate(batch["ids"], **kw)
        after = model(input_ids=batch["ids"], attention_mask=batch["mask"], position_ids=batch["pos"]).logits
    torch.save(
        {
            "plain": plain,
            "prefill": prefill,
            "sequences": gen.sequences,
            "decode": torch.stack(gen.logits),
            "after": after,
            "kinds": kinds,
            "hooks_prefill": hooks_prefill,
            "hooks_sequences": hooks_gen.sequences,
            "hooks_decode": torch.stack(hooks_gen.logits),
        },
        f"{out_prefix}.rank{dist.get_rank()}.pt",
    )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:5])
