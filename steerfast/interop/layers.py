"""Where a control vector's `direction.N` lands in steerfast's terms, and back.

llama.cpp adds `direction.N` to the output of block N (0-based) after the block's residual
add, to every token: that is the residual stream entering block N+1, i.e. steerfast site
`mlp.out` of layer N with positions `all`, strength = llama.cpp's scale. Block 0 cannot be
steered by llama.cpp (its loader rejects `direction.0`); repeng's ControlModel applies its
key k at the output of block k too, and may hold k = 0.

Which activation a vector was *read* from differs between producers, not where it is
applied: llama.cpp's cvector-generator stores the difference read at block il's output as
`direction.{il+1}` (so it steers one block later than it read), repeng stores the
difference read at block k's output as key k (`hidden_states[k + 1]`).
"""

from __future__ import annotations

from ..errors import PlanError

SITE = "mlp.out"  # the only site a control vector can express
LAYER_BASE = 0  # direction.N <-> steerfast layer N + LAYER_BASE (recorded on export)


def layer_of_direction(n: int) -> tuple[int, str]:
    """(steerfast layer, site) that `direction.n` steers."""
    if n < 0:
        raise PlanError(f"direction index must be >= 0, got {n}")
    return n + LAYER_BASE, SITE


def direction_of(layer: int, site: str) -> int:
    """The `direction.N` index of an add at (layer, site); PlanError when no N expresses it."""
    if site == "embed.out":
        raise PlanError(
            "the stream entering layer 0 (embed.out) has no control-vector direction: "
            "llama.cpp steers block outputs only (direction.N = mlp.out of layer N)"
        )
    if site != SITE:
        raise PlanError(
            f"site {site} of layer {layer} is inside a block; a control vector can only "
            f"add to a block's output (site {SITE})"
        )
    return layer - LAYER_BASE
