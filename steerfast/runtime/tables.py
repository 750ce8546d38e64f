"""Device-resident tables of a plan, grouped by the module they land on.

Each intervention becomes one Application: an (E, D) fp32 table plus an (E,) strength
vector, in the shapes of the ops contract (mask/delta for scale, bias/coef for add).
Strength lives in a tensor so it can change in place without re-patching.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from ..adapters import INPUT_SITES
from ..plan import Intervention


@dataclass
class Application:
    policy: str
    table: Tensor       # (E, D) fp32
    strength: Tensor    # (E,) fp32
    scale: bool

    @classmethod
    def from_intervention(cls, iv: Intervention, device) -> "Application":
        table = iv.tensor.to(device=device, dtype=torch.float32).contiguous()
        strength = torch.full((iv.entries,), iv.strength, dtype=torch.float32, device=device)
        return cls(iv.positions, table, strength, iv.kind == "scale")

    def args(self) -> tuple[Optional[Tensor], Optional[Tensor], Optional[Tensor], Optional[Tensor]]:
        """(mask, delta, bias, coef) for ops.steer_rows_."""
        if self.scale:
            return self.table, self.strength, None, None
        return None, None, self.table, self.strength


@dataclass
class ModuleTables:
    """Everything steering one module: input-side (prologue) and output-side (epilogue)."""
    inputs: list[Application] = field(default_factory=list)
    outputs: list[Application] = field(default_factory=list)

    def add(self, iv: Intervention, app: Application) -> None:
        (self.inputs if iv.site in INPUT_SITES else self.outputs).append(app)
