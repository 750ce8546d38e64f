"""A request's steering: the `steering` list parsed, checked against the plans, made canonical.

The frontend turns what the client sent (a list of {plan, strength, positions}, or the same
as a JSON string through `vllm_xargs`) into a canonical form carried in
`SamplingParams.extra_args["steering"]`: each entry with its plan's digest, and a key that
names the configuration (same key = same steering = may share KV). Workers rebuild the
combined plan from it exactly as `steerfast serve` does (with_strength, with_positions, +).
"""

from __future__ import annotations

import hashlib
import json
import math

from ..errors import SteeringError
from ..positions import parse_policy

KEY = "steering"
CANONICAL = "steerfast/1"
FIELDS = {"plan", "strength", "positions"}


def parse(raw) -> list[dict]:
    """[{plan, strength|None, positions|None}] from the client's value; SteeringError if bad."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise SteeringError(f"steering: not valid JSON ({exc})") from None
    if not isinstance(raw, list):
        raise SteeringError("steering must be a list of {plan, strength, positions}")
    out = []
    for i, item in enumerate(raw):
        where = f"steering[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("plan"), str):
            raise SteeringError(f"{where} must be an object with a string 'plan'")
        extra = set(item) - FIELDS
        if extra:
            raise SteeringError(f"{where} has unknown fields {sorted(extra)}")
        strength, positions = item.get("strength"), item.get("positions")
        if strength is not None and (
            isinstance(strength, bool)
            or not isinstance(strength, (int, float))
            or not math.isfinite(strength)
        ):
            raise SteeringError(f"{where}: strength must be a finite number, got {strength!r}")
        if positions is not None:
            if not isinstance(positions, str):
                raise SteeringError(f"{where}: positions must be a string such as 'all' or 'prefix:4'")
            try:
                parse_policy(positions)
            except SteeringError as exc:
                raise SteeringError(f"{where}: {exc}") from None
        out.append({"plan": item["plan"], "strength": strength, "positions": positions})
    return out


def canonical(entries: list[dict], registry, fits) -> dict | None:
    """{"v", "key", "entries": [... + digest], "positional", "whole_prompt"}; None for none.

    Builds the combined plan once, so a combination that cannot be made is refused here, and
    `fits(plan)` (the engine's Layout.groups) refuses one the workers cannot apply exactly:
    plans that each fit can need more lanes together than the engine has."""
    if not entries:
        return None
    resolved = []
    for e in entries:
        key, _ = registry.get(e["plan"])
        resolved.append({**e, "digest": key})
    plan = combined(resolved, registry)
    fits(plan)
    positional = any(iv.positions != "all" for iv in plan.interventions)
    conds = plan.condition.conditions if plan.condition is not None else ()
    key = hashlib.sha256(json.dumps([CANONICAL, resolved], sort_keys=True).encode()).hexdigest()[:32]
    return {
        "v": CANONICAL,
        "key": key,
        "entries": resolved,
        "positional": positional,
        "whole_prompt": any(c.aggregate == "mean" for c in conds),  # its gate reads every prompt token
    }


def combined(resolved: list[dict], registry):
    """The configuration's one plan, as steerfast serve's Engine.resolve builds it."""
    plan = None
    for e in resolved:
        p = registry.resolve_digest(e["plan"], e["digest"])
        if e["strength"] is not None:
            p = p.with_strength(float(e["strength"]))
        if e["positions"] is not None:
            p = p.with_positions(e["positions"])
        plan = p if plan is None else plan + p
    return plan


def cache_salt(spec: dict, prompt_len: int, user_salt: str | None) -> str:
    """KV is shared only within one configuration; positional plans also key the prompt length
    (the block holding a request's prompt end carries its own steering)."""
    parts = [CANONICAL, spec["key"], str(prompt_len) if spec["positional"] else "", user_salt or ""]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
