"""The plugin's configuration: `additional_config={"steerfast": {...}}` of a vLLM engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..adapters import SITES
from ..errors import SteeringError

SECTION = "steerfast"
KEYS = {"plans", "sites", "lanes", "entries", "plan_dir", "read_layers", "compiled_edit", "monitors"}
COMPILED_EDITS = ("data", "op")


@dataclass(frozen=True)
class PluginConfig:
    """plans: name -> path, loaded at start in every process.
    sites: which (layer, site) get hooks, installed before vLLM's first compile: "plans" (every
    site the start-up plans use) or "all" (every site of every layer), or a list of "L:site".
    lanes: row maps per step (a request combining policies at one site needs one each).
    entries: table rows per slot (prefix:n plans need n); None = the start-up plans' largest.
    plan_dir: where the server keeps uploaded plans (they are reloaded at start).
    read_layers: layers conditions may read, beyond those of the start-up plans.
    monitors: monitor files (or plan files carrying monitors) loaded at start; the monitors
    of the `plans` files are loaded too. A request names the ones it wants read.
    compiled_edit: how compiled graphs edit a site: "data" (every lane's edit traced in as
    tensor data, which Inductor fuses; CUDA-graph safe) or "op" (an opaque op whose body runs
    the eager edit, branching on the host each step; no CUDA graphs). docs/benchmarks.md
    measures both: "data" is as fast idle and faster steered on CPU."""

    plans: dict = field(default_factory=dict)
    sites: object = "plans"
    lanes: int = 2
    entries: int | None = None
    plan_dir: str | None = None
    read_layers: tuple = ()
    compiled_edit: str = "data"
    monitors: tuple = ()


def plugin_config(additional_config) -> PluginConfig | None:
    """None when the engine does not ask for steerfast."""
    raw = (additional_config or {}).get(SECTION)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SteeringError(f"additional_config['{SECTION}'] must be an object, got {type(raw).__name__}")
    unknown = set(raw) - KEYS
    if unknown:
        raise SteeringError(
            f"additional_config['{SECTION}'] has unknown keys {sorted(unknown)}; known: {sorted(KEYS)}"
        )
    plans = raw.get("plans", {})
    if not isinstance(plans, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in plans.items()
    ):
        raise SteeringError(f"additional_config['{SECTION}']['plans'] must map plan names to file paths")
    sites = raw.get("sites", "plans")
    if not (
        sites in ("plans", "all") or (isinstance(sites, list) and all(isinstance(s, str) for s in sites))
    ):
        raise SteeringError("'sites' must be 'plans', 'all' or a list of 'layer:site' strings")
    if isinstance(sites, list):
        for s in sites:
            layer, _, name = s.partition(":")
            if not layer.isdigit() or name not in SITES:
                raise SteeringError(f"site {s!r}: expected 'layer:site' with site one of {', '.join(SITES)}")
    lanes, entries = raw.get("lanes", 2), raw.get("entries")
    for key, value in (("lanes", lanes), ("entries", entries)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SteeringError(f"'{key}' must be a positive int, got {value!r}")
    plan_dir = raw.get("plan_dir")
    if plan_dir is not None and not isinstance(plan_dir, str):
        raise SteeringError("'plan_dir' must be a directory path")
    reads = raw.get("read_layers", [])
    if not isinstance(reads, list) or any(
        isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in reads
    ):
        raise SteeringError("'read_layers' must be a list of layer indices")
    compiled_edit = raw.get("compiled_edit", "data")
    if compiled_edit not in COMPILED_EDITS:
        raise SteeringError(
            f"'compiled_edit' must be one of {', '.join(COMPILED_EDITS)}, got {compiled_edit!r}"
        )
    monitors = raw.get("monitors", [])
    if not isinstance(monitors, list) or not all(isinstance(m, str) for m in monitors):
        raise SteeringError("'monitors' must be a list of monitor (or plan) file paths")
    return PluginConfig(
        dict(plans), sites, lanes, entries, plan_dir, tuple(reads), compiled_edit, tuple(monitors)
    )
