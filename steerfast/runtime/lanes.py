"""Lanes: how a slot's interventions are grouped per module side and policy.

A slot's interventions are split into lanes (one row map each per forward) so that every
module side applies them in plan order; each (lane, module side) group is composed into one
affine table entry.
"""

from __future__ import annotations

from .compose import compose


def lane_layout(keys_and_policies) -> tuple[list[str], list[int]]:
    """Lanes for one slot: (policy per lane, lane per intervention).

    keys_and_policies: (module side key, positions) or (key, positions, is_ablate) per
    intervention, in plan order. At each module side the interventions land in increasing
    lanes, and lanes are applied in order, so the plan's order holds even where several
    position policies steer one site. A lane entry applies its affine part, then its ablation
    (ops.steer_ablate_): so anything after an ablate at the same side opens a later lane.
    """
    lanes: list[str] = []
    last: dict = {}
    sealed: set = set()
    assign = []
    for item in keys_and_policies:
        key, policy = item[0], item[1]
        prev = last.get(key, -1)
        if key in sealed:  # after an ablate: a strictly later lane
            lane = next((i for i in range(prev + 1, len(lanes)) if lanes[i] == policy), None)
            if lane is None:
                lanes.append(policy)
                lane = len(lanes) - 1
        elif prev >= 0 and lanes[prev] == policy:
            lane = prev
        else:
            lane = next((i for i in range(prev + 1, len(lanes)) if lanes[i] == policy), None)
            if lane is None:
                lanes.append(policy)
                lane = len(lanes) - 1
        last[key] = lane
        if len(item) > 2 and item[2]:
            sealed.add(key)
        else:
            sealed.discard(key)
        assign.append(lane)
    return lanes, assign


def slot_groups(adapter, model, plans) -> list[tuple]:
    """(slot, lane, policy, module, side, Affine) for every slot's interventions, grouped,
    in lane order within each slot."""
    out = []
    for slot, plan in enumerate(plans):
        if plan is None:
            continue
        sites = [adapter.site(model, iv.layer, iv.site) for iv in plan.interventions]
        n = len(plan.interventions)
        gated = plan.condition.flags(n) if getattr(plan, "condition", None) is not None else [False] * n
        # a gated intervention never shares a lane with an ungated one: its lane's map is masked
        policies, lanes = lane_layout(
            ((id(s.module), s.side), (iv.positions, g), iv.kind == "ablate")
            for s, iv, g in zip(sites, plan.interventions, gated)
        )
        groups: dict[tuple, tuple] = {}
        for iv, site, lane in zip(plan.interventions, sites, lanes):
            entry = groups.setdefault((lane, id(site.module), site.side), (site, []))
            entry[1].append(iv)
        for (lane, _, side), (site, ivs) in sorted(groups.items(), key=lambda kv: kv[0][0]):
            aff = compose(ivs)
            if site.add_scale != 1.0 and aff.coef is not None:
                aff.coef = aff.coef * site.add_scale
            aff.gated = policies[lane][1]
            out.append((slot, lane, policies[lane][0], site.module, side, aff))
    return out


__all__ = ["lane_layout", "slot_groups"]
