"""pytest-benchmark view of the steering overhead on the default model.

    pytest benchmarks/ --benchmark-only [--benchmark-json out.json]

Two kinds of test:
- per-variant timings of one decode step (batch 1) and one 64-token prefill, grouped by site
  config so pytest-benchmark's table compares unsteered / hooks / reference / fused;
  pytest-benchmark times tests one after the other, so these are *not* interleaved;
- `test_interleaved_ratios`: one quick group of the suite (steerfast.bench), variants timed
  side by side in interleaved rounds; its ratios land in the benchmark's extra_info.
The full matrix, the report and the threshold check are `steerfast bench` (docs/benchmarks.md).
"""

import pytest
import torch

from steerfast.bench.decode_loop import GreedySteps
from steerfast.bench.matrix import Group
from steerfast.bench.runner import get_model, run_group
from steerfast.bench.variants import PlanCache, build_variant, select_backend

VARIANTS = ["unsteered", "hooks[{s}]", "reference[{s}]", "fused[{s}]", "bank[{s}]"]
SITES = ["all-add", "all-sadi", "all-ablate"]


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return get_model("default")


@pytest.fixture(scope="module")
def plans(model):
    return PlanCache(model)


def _variant(model, plans, name):
    v = build_variant(model, name, plans, 1)
    if not v.ok:
        pytest.skip(f"{name}: {v.status} ({v.reason})")
    return v


@pytest.mark.parametrize("sites", SITES)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.split("[")[0])
def test_decode_step(benchmark, model, plans, variant, sites):
    name = variant.format(s=sites)
    v = _variant(model, plans, name)
    benchmark.group = f"decode step b1 {sites}"
    prompt = torch.randint(100, 10000, (1, 32), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        select_backend(v)
        greedy = GreedySteps(v.model, prompt)

        def step():
            select_backend(v)
            greedy()

        benchmark.pedantic(step, rounds=24, warmup_rounds=2, iterations=1)
    v.close()


@pytest.mark.parametrize("sites", SITES)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.split("[")[0])
def test_prefill_64(benchmark, model, plans, variant, sites):
    name = variant.format(s=sites)
    v = _variant(model, plans, name)
    benchmark.group = f"prefill 64 b1 {sites}"
    ids = torch.randint(100, 10000, (1, 64), generator=torch.Generator().manual_seed(1))

    def call():
        select_backend(v)
        v.model(input_ids=ids, use_cache=False, logits_to_keep=1)

    with torch.no_grad():
        benchmark.pedantic(call, rounds=5, warmup_rounds=1, iterations=1)
    v.close()


def test_interleaved_ratios(benchmark, model):
    group = Group(
        "default",
        "decode",
        1,
        16,
        variants=[
            "unsteered",
            "unsteered#2",
            "hooks[all-add]",
            "fused[all-add]",
            "hooks[all-sadi]",
            "fused[all-sadi]",
        ],
    )
    benchmark.group = "interleaved ratios (decode b1, 16 tokens)"
    result = benchmark.pedantic(
        lambda: run_group(group, threads=torch.get_num_threads()), rounds=1, iterations=1
    )
    benchmark.extra_info["noise"] = result["noise"]
    for name, row in result["variants"].items():
        if row.get("status") == "ok":
            benchmark.extra_info[f"{name} ratio"] = round(row["ratio"], 4)
        else:
            benchmark.extra_info[f"{name} status"] = row.get("status")
