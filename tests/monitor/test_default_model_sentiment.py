"""On the default model: under the shipped tuned sentiment CAA plan, the shipped sentiment
monitor's mean reading over the generated tokens rises at +c and falls at -c, beyond the 95%
bootstrap interval of the per-prompt difference, on 40 held-out prompts (never seen by the
tune). All three settings run as rows of one batch (per-row steering and monitors)."""

import pytest
import torch

from steerfast.monitor import shipped_monitor
from steerfast.steered_generation import Steer, generate
from steerfast.tune.datasets import sentiment_eval
from steerfast.tune.shipped import shipped_plan

pytestmark = pytest.mark.slow


def _interval(diff: torch.Tensor, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(diff), (n_boot, len(diff)), generator=g)
    means = diff[idx].mean(1).sort().values
    return float(means[int(0.025 * n_boot)]), float(means[int(0.975 * n_boot) - 1])


def test_sentiment_monitor_follows_the_plan(default_model):
    model, tok = default_model
    mon = shipped_monitor("sentiment")
    plan = shipped_plan("caa")
    c = plan.meta["tuned"]["strength"]
    prompts = [e["prompt"] for e in sentiment_eval("test")][:40]
    assert len(prompts) >= 30
    steer = [None] * len(prompts) + [Steer(plan, c)] * len(prompts) + [Steer(plan, -c)] * len(prompts)
    _, readings = generate(
        model,
        tok,
        prompts * 3,
        steer,
        monitors=[mon],
        return_monitors=True,
        max_new_tokens=16,
        do_sample=False,
    )
    mean = torch.tensor([sum(r["sentiment"]) / len(r["sentiment"]) for r in readings]).double()
    base, up, down = mean.split(len(prompts))
    lo_up, hi_up = _interval(up - base)
    lo_down, hi_down = _interval(down - base)
    print(
        f"+c: {float((up - base).mean()):+.3f} [{lo_up:+.3f}, {hi_up:+.3f}]  "
        f"-c: {float((down - base).mean()):+.3f} [{lo_down:+.3f}, {hi_down:+.3f}]"
    )
    assert lo_up > 0, (lo_up, hi_up)
    assert hi_down < 0, (lo_down, hi_down)
