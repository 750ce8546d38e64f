"""Plans by name, in the frontend and in every worker: loaded from files or uploaded bytes.

A plan's digest (sha256 of its file bytes) names its content: a request's canonical spec
carries it, so a worker steers with exactly the plan the frontend validated. Workers keep
every digest they have seen (a request validated just before a delete still resolves).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import torch

from ..errors import PlanError, SteeringError
from ..plan import SteeringPlan


class UnknownPlan(SteeringError):
    pass


def skeleton(hf_config):
    """The HF model of `hf_config` on the meta device: sites, widths and layer counts for
    validation and lane layout, without memory or weights."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(hf_config)


def plan_from_bytes(data: bytes) -> SteeringPlan:
    if not data:
        raise PlanError("empty plan: send the plan's .safetensors bytes")
    fd, path = tempfile.mkstemp(suffix=".safetensors", prefix="steerfast-plan-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return SteeringPlan.load(path)
    finally:
        os.unlink(path)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class PlanRegistry:
    """name -> (digest, plan); by_digest keeps every plan ever added (workers resolve by it)."""

    def __init__(self, model):
        self.model = model  # the skeleton plans are validated against
        self.by_name: dict[str, str] = {}
        self.by_digest: dict[str, SteeringPlan] = {}
        self.lock = threading.Lock()

    def add_bytes(self, name: str, data: bytes, replace: bool = False) -> SteeringPlan:
        plan = plan_from_bytes(data)
        plan.validate(self.model)
        key = digest(data)
        with self.lock:
            if name in self.by_name and not replace and self.by_name[name] != key:
                raise SteeringError(f"a plan named {name!r} is already loaded; delete it first")
            self.by_name[name] = key
            self.by_digest[key] = plan
        return plan

    def add_file(self, name: str, path: str) -> SteeringPlan:
        p = Path(path)
        if not p.is_file():
            raise PlanError(f"plan {name!r}: no plan file at {path}")
        try:
            return self.add_bytes(name, p.read_bytes())
        except PlanError as exc:
            raise PlanError(f"plan {name!r} ({path}): {exc}") from None

    def remove(self, name: str) -> None:
        with self.lock:
            if self.by_name.pop(name, None) is None:
                raise UnknownPlan(f"no plan named {name!r}")

    def get(self, name: str) -> tuple[str, SteeringPlan]:
        with self.lock:
            key = self.by_name.get(name)
            if key is None:
                raise UnknownPlan(f"unknown steering plan {name!r}; loaded: {sorted(self.by_name)}")
            return key, self.by_digest[key]

    def names(self) -> dict[str, SteeringPlan]:
        with self.lock:
            return {n: self.by_digest[k] for n, k in self.by_name.items()}

    def resolve_digest(self, name: str, key: str) -> SteeringPlan:
        with self.lock:
            plan = self.by_digest.get(key)
        if plan is None:
            raise UnknownPlan(f"plan {name!r} (digest {key}) was never loaded in this worker")
        return plan
