"""Tuned plans shipped for the default model (steerfast/data/tuned/, provenance in its
README.md and in each plan's `tuned` metadata): what `steerfast demo` steers with."""

from __future__ import annotations

from importlib import resources

from ..plan import SteeringPlan

DEMO_PLANS = {"actadd": "smollm2_actadd_love_hate.safetensors", "caa": "smollm2_caa_sentiment.safetensors"}


def shipped_plan(key: str) -> SteeringPlan | None:
    path = resources.files("steerfast.data").joinpath("tuned", DEMO_PLANS[key])
    return SteeringPlan.load(str(path)) if path.is_file() else None


def measured_line(plan: SteeringPlan) -> str:
    """One line: the effect and damage the tune measured for this plan (or that it is untuned)."""
    t = plan.meta.get("tuned")
    if not t:
        return "untuned (no measurements)"
    m, b = t["measured"], t["budget"]

    def c(e, fmt="+.3f"):
        return f"{e['mean']:{fmt}} [{e['lo']:{fmt}}, {e['hi']:{fmt}}]"

    what = "VADER shift" if t["effect_metric"] == "scorer" else "log-odds shift"
    sign = " (worse of ±c)" if t.get("both_signs") else ""
    tail = f"looping completions {c(m['loops'])} (budget {b['loops']:g}); " if "loops" in m else ""
    return (
        f"layer {t['layer']}, c={t['strength']:g}: {what}{sign} {c(m['effect'])}; KL {c(m['kl'])} (budget {b['kl']:g}), "
        f"ppl ratio {c(m['ppl_ratio'], '.3f')} (budget {b['ppl_ratio']:g}), "
        f"repeated 3-grams {c(m['rep'])} (budget {b['rep']:g}); {tail}{t['eval_prompts']} tuning prompts "
        f"of {t['max_new_tokens']} tokens (not used to build the vector)"
    )
