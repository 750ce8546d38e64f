"""What every worker installs at start, known the same way in the frontend: hooked sites,
lanes, table entries. A configuration is checked against it before a request is accepted,
so nothing reaches a worker that it cannot steer exactly."""

from __future__ import annotations

from ..adapters import SITES, get_adapter
from ..errors import SteeringError
from ..runtime.lanes import slot_groups
from .config import PluginConfig

INPUT_SITES = ("attn.heads", "mlp.neurons")


class Layout:
    def __init__(self, skel, cfg: PluginConfig, start_plans: list, tp_size: int = 1):
        self.skel, self.adapter, self.tp_size = skel, get_adapter(skel), tp_size
        self.model_type = skel.config.model_type
        n_layers = self.adapter.num_layers(skel)
        self.where: dict[tuple, tuple[int, str]] = {}  # (id(skeleton module), side) -> (layer, site)
        for layer in range(n_layers):
            for site in SITES:
                if site == "embed.out" and layer:
                    continue
                s = self.adapter.site(skel, layer, site)
                self.where[(id(s.module), s.side)] = (layer, site)
        if cfg.sites == "all":
            sites = sorted(set(self.where.values()))
        elif cfg.sites == "plans":
            sites = sorted({(iv.layer, iv.site) for p in start_plans for iv in p.interventions})
        else:
            sites = sorted({(int(s.partition(":")[0]), s.partition(":")[2]) for s in cfg.sites})
        for layer, _ in sites:
            if layer >= n_layers:
                raise SteeringError(f"configured site layer {layer} out of range ({n_layers} layers)")
        self.sites = sites
        self.lanes = cfg.lanes
        self.entries = cfg.entries or max([iv.entries for p in start_plans for iv in p.interventions] or [1])
        self.width = {ls: self.adapter.site_dim(skel, *ls) for ls in sites}
        self.hidden = int(skel.config.hidden_size)
        reads = {c.layer for p in start_plans if p.condition is not None for c in p.condition.conditions}
        self.read_layers = sorted(reads | set(cfg.read_layers))

    def groups(self, plan) -> list[tuple]:
        """(lane, policy, (layer, site), Affine) of the plan as one slot; SteeringError if the
        workers cannot apply it exactly."""
        hooked = set(self.sites)
        out = []
        for _, lane, policy, module, side, aff in slot_groups(self.adapter, self.skel, [plan]):
            ls = self.where[(id(module), side)]
            if ls not in hooked:
                raise SteeringError(
                    f"site {ls[0]}:{ls[1]} has no hook in this engine (hooks are installed before "
                    "vLLM compiles); start it with additional_config steerfast.sites = 'all' or "
                    "a list naming this site"
                )
            if lane >= self.lanes:
                raise SteeringError(
                    f"this combination needs {lane + 1} lanes (one per position policy at a site); "
                    f"the engine has {self.lanes} (additional_config steerfast.lanes)"
                )
            rows = next(t for t in (aff.mask, aff.bias, aff.dir) if t is not None).shape[0]
            if rows > self.entries:
                raise SteeringError(
                    f"positions need {rows} table rows per request; the engine has {self.entries} "
                    "(additional_config steerfast.entries)"
                )
            if aff.dir is not None and ls[1] in INPUT_SITES and self.tp_size > 1:
                raise SteeringError(
                    f"ablation at {ls[1]} is not supported with tensor parallelism: the direction's "
                    "dot product would span the ranks' shards"
                )
            out.append((lane, policy, ls, aff))
        if plan.condition is not None:
            missing = sorted({c.layer for c in plan.condition.conditions} - set(self.read_layers))
            if missing:
                raise SteeringError(
                    f"the plan's condition reads layer(s) {missing}, which have no read hook in this "
                    f"engine (read layers {self.read_layers}); start it with additional_config "
                    "steerfast.read_layers naming them"
                )
        return out
