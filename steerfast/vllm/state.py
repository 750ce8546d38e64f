"""What one process of a steered engine holds: the config, the plans, the layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import SteeringError
from ..monitor import check_names, load_monitors, requested
from .config import PluginConfig
from .layout import Layout
from .registry import PlanRegistry, skeleton
from .spec import canonical, combined, parse

SUFFIX = ".safetensors"


def saved_plans(plan_dir: str | None) -> dict[str, str]:
    """Uploaded plans kept in plan_dir (the server's --plan-dir): name -> path."""
    if not plan_dir or not Path(plan_dir).is_dir():
        return {}
    out = {}
    for entry in sorted(os.listdir(plan_dir)):
        if entry.endswith(SUFFIX) and not entry.startswith("."):
            out[entry[: -len(SUFFIX)]] = str(Path(plan_dir) / entry)
    return out


class EngineState:
    def __init__(self, cfg: PluginConfig, hf_config, tp_size: int):
        self.cfg = cfg
        skel = skeleton(hf_config)
        self.registry = PlanRegistry(skel)
        for name, path in {**cfg.plans, **saved_plans(cfg.plan_dir)}.items():
            self.registry.add_file(name, path)
        self.layout = Layout(skel, cfg, list(self.registry.names().values()), tp_size)
        for plan in self.registry.names().values():  # validated by the registry
            self.layout.groups(plan)
        monitors = [m for path in (*cfg.plans.values(), *cfg.monitors) for m in load_monitors(path)]
        check_names(monitors)
        for m in monitors:
            m.validate(skel)
        self.monitors = {m.name: m for m in monitors}

    def canonical(self, raw):
        return canonical(parse(raw), self.registry, self.layout.groups)

    def monitor_names(self, raw) -> list[str]:
        """A request's `monitors`: a list of names this engine holds (or its JSON string)."""
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise SteeringError(f"monitors: not valid JSON ({exc})") from None
        return requested(raw, self.monitors)

    def plan_of(self, spec: dict):
        return combined(spec["entries"], self.registry)

    def add_plan(self, name: str, data: bytes) -> None:
        plan = self.registry.add_bytes(name, data)  # validated against the model
        try:
            self.layout.groups(plan)
        except Exception:
            self.registry.remove(name)
            raise
