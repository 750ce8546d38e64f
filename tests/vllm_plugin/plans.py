"""Plans for the vLLM plugin tests on the default model (SmolLM2-135M: 30 layers, d 576,
9 heads x 64, 1536 neurons): every kind, site and position policy, deterministic tensors
scaled so each one visibly changes greedy text. Exactness does not depend on the plan being
learned; the shipped tuned CAA / ActAdd plans are included as the real ones."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch

from steerfast import Intervention, SteeringPlan
from steerfast.plan import model_hint

TUNED = files("steerfast.data") / "tuned"


def _unit(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d, generator=g)
    return v / v.norm()


def _mask(d: int, idx) -> torch.Tensor:
    m = torch.zeros(d)
    m[list(idx)] = 1.0
    return m


def _head_mask(heads, n_heads: int = 9, head_dim: int = 64) -> torch.Tensor:
    m = torch.zeros(n_heads * head_dim)
    for h in heads:
        m[h * head_dim : (h + 1) * head_dim] = 1.0
    return m


def build(model) -> dict[str, SteeringPlan]:
    hint = model_hint(model)
    d, ffn = 576, 1536
    add = lambda layer, site, v, pos, s: Intervention(layer, site, "add", v, pos, s)  # noqa: E731
    plans = {
        "caa": SteeringPlan.load(TUNED / "smollm2_caa_sentiment.safetensors"),
        "actadd": SteeringPlan.load(TUNED / "smollm2_actadd_love_hate.safetensors"),
        "sadi_head": SteeringPlan(
            [Intervention(l, "attn.heads", "scale", _head_mask([1, 4]), "prompt_last", 6.0) for l in (6, 9)],
            "sadi",
            hint,
        ),
        "sadi_neuron": SteeringPlan(
            [Intervention(12, "mlp.neurons", "scale", _mask(ffn, range(0, ffn, 7)), "prompt_last", 8.0)],
            "sadi",
            hint,
        ),
        "sadi_hidden": SteeringPlan(
            [Intervention(10, "mlp.out", "scale", _mask(d, range(0, d, 5)), "last", 3.0)], "sadi", hint
        ),
        "laai": SteeringPlan(
            [add(l, "attn.out", 12.0 * _unit(d, 10 + l), "prompt_last", 1.0) for l in (3, 5, 7)], "laai", hint
        ),
        "embed": SteeringPlan([add(0, "embed.out", 0.5 * _unit(d, 3), "all", 1.0)], "actadd", hint),
        "ablate": SteeringPlan.ablate_everywhere(model, _unit(d, 4), layers=range(4, 16)),
    }
    return plans


def save_all(directory: Path, model) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, plan in build(model).items():
        path = directory / f"{name}.safetensors"
        plan.save(path)
        out[name] = str(path)
    return out


def stream_scores(model, tok, prompts, layer: int, vector: torch.Tensor, aggregate: str) -> list[float]:
    """c · mean (or last) of the residual stream entering `layer` over each prompt: the hook
    oracle of a condition's score, to place thresholds between the test prompts."""
    seen = {}

    def pre(module, args, kwargs):
        seen["h"] = (args[0] if args else kwargs["hidden_states"]).detach()

    h = model.model.layers[layer].register_forward_pre_hook(pre, with_kwargs=True)
    out = []
    try:
        for p in prompts:
            with torch.no_grad():
                model(**tok(p, return_tensors="pt"))
            x = seen["h"][0].float() @ vector
            out.append(float(x.mean() if aggregate == "mean" else x[-1]))
    finally:
        h.remove()
    return out


def conditional(
    model, tok, prompts, aggregate: str = "mean", layer: int = 10
) -> tuple[SteeringPlan, list[bool]]:
    """The shipped CAA plan (layer 13) at strength 6, gated by c · h(layer 10) > t, t halfway
    between the middle two prompts' scores: (plan, which prompts open the gate)."""
    from steerfast import Condition

    v = _unit(576, 77 if aggregate == "mean" else 78)
    scores = stream_scores(model, tok, prompts, layer, v, aggregate)
    s = sorted(scores)
    mid = len(s) // 2
    t = (s[mid - 1] + s[mid]) / 2
    caa = SteeringPlan.load(TUNED / "smollm2_caa_sentiment.safetensors").with_strength(6.0)
    return caa.when(Condition(layer, v, t, ">", aggregate)), [x > t for x in scores]
