"""`steerfast bench --check`: compare a results dict with the committed thresholds.

Rules (thresholds in steerfast/bench/thresholds.json, shipped with the package):
Every fixed limit is a limit *plus the group's measured noise* (`allowed`): the noise is the
spread of the group's A/A pair (unsteered#2 / unsteered, round by round, in the same run), so
a cell a quiet re-run would pass is not failed on noise, and a real slowdown beyond the noise
still fails.
1. decode_b1_all_layers: in every eager decode group at batch 1, for each listed site config
   (all layers steered) and kind (fused), kind[s] / unsteered (median of per-round paired
   ratios) must not exceed max_ratio plus noise_factor x the group's noise. A missing or
   failed cell there is a violation too (nothing to vouch for).
2. fused_vs_hooks: in every group, for each site config with both cells present,
   fused[s] / hooks[s] - 1 (median of per-round paired ratios) must not exceed
   noise_factor x the group's noise (the spread of its repeated unsteered rounds: the A/A
   pair unsteered#2 / unsteered, measured in the same run).
3. bank_decode: in every eager decode group, for each listed site config, bank[s] /
   unsteered (a distinct slot per row at batch > 1) must not exceed max_ratio plus
   noise_factor x the group's noise; a failed bank cell is a violation.
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.json")  # ships with the package


def load_thresholds(path=None) -> dict:
    p = Path(path) if path else DEFAULT_THRESHOLDS
    return json.loads(p.read_text())


def check(results: dict, thresholds: dict) -> list[str]:
    """Violations, one line each; empty when every threshold holds."""
    bad: list[str] = []
    rule = thresholds.get("decode_b1_all_layers")
    if rule:
        bad += _decode_b1(results, rule)
    rule = thresholds.get("fused_vs_hooks")
    if rule:
        factor = float(rule.get("noise_factor", 1.0))
        for g in results.get("groups", []):
            noise = g.get("noise")
            if noise is None or noise != noise:  # NaN: no unsteered pair
                continue
            for name, row in g.get("variants", {}).items():
                if row.get("kind") not in rule.get("kinds", ["fused"]) or row.get("status") != "ok":
                    continue
                hooks = g["variants"].get(f"hooks[{row.get('sites')}]")
                if not hooks or hooks.get("status") != "ok" or "median" not in hooks:
                    continue
                vs = row.get("ratio_vs_hooks")
                excess = (vs if vs is not None else row["median"] / hooks["median"]) - 1.0
                if excess > factor * noise:
                    bad.append(
                        f"{g['id']} {name}: fused/hooks = {1 + excess:.4f}, slower than hooks "
                        f"by {100 * excess:.1f}% > noise {100 * factor * noise:.1f}%"
                    )
    rule = thresholds.get("bank_decode")
    if rule:
        bad += _bank_decode(results, rule)
    return bad


def _group_noise(group: dict) -> float:
    """The group's measured A/A noise; 0 when none was measured (the bare limit applies)."""
    noise = group.get("noise")
    return 0.0 if noise is None or noise != noise else float(noise)


def allowed(limit: float, factor: float, noise: float) -> float:
    """The largest ratio a cell may show: the fixed limit plus factor x the group's noise.

    A ratio is a median of per-round paired ratios; two identical cases of the same group
    drift apart by `noise` in the same run, so a cell inside limit + noise is not evidence of
    a slowdown and a cell beyond it is.
    """
    return limit + factor * noise


def _decode_b1(results: dict, rule: dict) -> list[str]:
    """Rule 1: kind[s] / unsteered in eager decode groups at batch 1 <= max_ratio + noise."""
    bad = []
    limit, factor = float(rule["max_ratio"]), float(rule.get("noise_factor", 1.0))
    seen = False
    for g in results.get("groups", []):
        if g.get("phase") != "decode" or g.get("batch") != 1 or g.get("engine", "eager") != "eager":
            continue
        noise = _group_noise(g)
        for kind in rule.get("kinds", ["fused"]):
            for s in rule.get("sites", ["all-add"]):
                name = f"{kind}[{s}]"
                row = g.get("variants", {}).get(name)
                if row is None:
                    continue
                seen = True
                if row.get("status") != "ok" or "ratio" not in row:
                    bad.append(
                        f"{g['id']} {name}: {row.get('status')} ({row.get('reason', '')}) "
                        f"-- the decode batch-1 all-layers threshold cannot be checked"
                    )
                elif row["ratio"] > allowed(limit, factor, noise):
                    bad.append(
                        f"{g['id']} {name}: steered/unsteered = {row['ratio']:.4f} > {limit} + noise "
                        f"{factor * noise:.3f} (decode, batch 1, all layers)"
                    )
    if not seen:
        bad.append(
            f"no decode batch-1 all-layers fused cell in the results: the {limit} threshold cannot be checked"
        )
    return bad


def _bank_decode(results: dict, rule: dict) -> list[str]:
    """Rule 3: bank[s] / unsteered in eager decode groups <= max_ratio + noise_factor x noise."""
    bad = []
    limit, factor = float(rule["max_ratio"]), float(rule.get("noise_factor", 1.0))
    for g in results.get("groups", []):
        if g.get("phase") != "decode" or g.get("engine", "eager") != "eager":
            continue
        noise = _group_noise(g)
        for s in rule.get("sites", ["all-add", "all-sadi"]):
            row = g.get("variants", {}).get(f"bank[{s}]")
            if row is None:
                continue
            if row.get("status") != "ok" or "ratio" not in row:
                bad.append(f"{g['id']} bank[{s}]: {row.get('status')} ({row.get('reason', '')})")
            elif row["ratio"] > allowed(limit, factor, noise):
                bad.append(
                    f"{g['id']} bank[{s}]: bank/unsteered = {row['ratio']:.4f} > {limit} + noise "
                    f"{factor * noise:.3f} (decode, a distinct slot per row)"
                )
    return bad


__all__ = ["allowed", "check", "load_thresholds", "DEFAULT_THRESHOLDS"]
