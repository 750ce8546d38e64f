"""Per-request steering on top of HF generate: one batch, each row its own plan and strength.

    generate(model, tok, ["a", "b", "c"], steer=[Steer(caa_plan, 4.0), None, Steer(sadi_plan)],
             max_new_tokens=32)

Requests with the same (plan, strength, positions) share a slot of the model's SteeringBank.
With no live bank a temporary one is made and reverted; on a live bank the call uses its free
slots (or a slot already holding the same plan) and restores the slots and row assignment it
changed. Calls on one model are serialised (a per-model lock, then the bank's lock): threads
get exactly what they would get one after the other.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from . import monitored
from .errors import SteeringError
from .plan import SteeringPlan
from .positions import parse_policy
from .runtime.bank import _HANDLE_ATTR, SteeringBank
from .runtime.monitors import MonitorReader


@dataclass(frozen=True)
class Steer:
    """One request's steering: a plan, optionally with its own strength and positions."""

    plan: SteeringPlan
    strength: float | None = None
    positions: str | None = None

    def __post_init__(self):
        if self.plan is None:
            raise SteeringError("Steer(None): pass None itself (not Steer(None)) for an unsteered request")
        if not isinstance(self.plan, SteeringPlan):
            raise SteeringError(
                f"Steer needs a SteeringPlan, got {type(self.plan).__name__} "
                f"({self.plan!r:.60}); build one with a recipe or SteeringPlan.load()"
            )
        if self.strength is not None and (
            isinstance(self.strength, bool)
            or not isinstance(self.strength, (int, float))
            or not math.isfinite(self.strength)
        ):
            raise SteeringError(f"Steer strength must be a finite number, got {self.strength!r}")
        if self.positions is not None:
            parse_policy(self.positions)

    def resolved(self) -> SteeringPlan:
        plan = self.plan
        if self.strength is not None:
            plan = plan.with_strength(self.strength)
        if self.positions is not None:
            plan = plan.with_positions(self.positions)
        return plan


SteerSpec = SteeringPlan | Steer | None


def _as_steer(spec: SteerSpec) -> Steer | None:
    if spec is None or isinstance(spec, Steer):
        return spec
    if isinstance(spec, SteeringPlan):
        return Steer(spec)
    raise SteeringError(f"steer entries must be None, a SteeringPlan or a Steer, got {type(spec).__name__}")


def _row_factor(model, gen_kwargs: dict) -> int:
    """How many rows HF generate makes of each input row, from the effective generation
    config: keyword arguments over `generation_config=` over `model.generation_config`."""
    config = gen_kwargs.get("generation_config") or getattr(model, "generation_config", None)

    def setting(name: str) -> int:
        value = gen_kwargs.get(name)
        if value is None:
            value = getattr(config, name, None)
        return int(value or 1)

    beams = setting("num_beams")
    return beams if beams > 1 else setting("num_return_sequences")


_MODEL_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()


def _model_lock(model) -> threading.RLock:
    """One lock per model (kept off the model, so copy.deepcopy of it still works)."""
    with _MODEL_LOCKS_GUARD:
        lock = _MODEL_LOCKS.get(model)
        if lock is None:
            lock = _MODEL_LOCKS[model] = threading.RLock()
        return lock


class _BankLease:
    """The model's live bank, or a temporary one sized for this call.

    Holds the model's lock from construction to close(): a temporary bank is never seen by
    another call, and a live bank's slots are lent and given back one call at a time.
    """

    def __init__(self, model, plans: dict[int, SteeringPlan]):
        self._lock = _model_lock(model)
        self._lock.acquire()
        try:
            self._open(model, plans)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, model, plans: dict[int, SteeringPlan]) -> None:
        live = getattr(model, _HANDLE_ATTR, None)
        if live is not None and live.single_plan:
            raise SteeringError(
                "model is patched with a single plan (patch()); revert it first, "
                "or make a SteeringBank(model, slots=S) for per-request steering"
            )
        self.owned = live is None
        self.bank = live if live is not None else SteeringBank(model, slots=max(1, len(plans)))
        self.lent: list[int] = []  # live-bank slots this call filled
        self.restore_rows = None
        if self.owned:
            self.slot_of = {c: c for c in plans}
            self.loads = dict(plans)
            return
        self.slot_of, self.loads = {}, {}
        free = [s for s, p in enumerate(self.bank.plans) if p is None]
        for config, plan in plans.items():
            same = [s for s, p in enumerate(self.bank.plans) if p is plan]
            if same:
                self.slot_of[config] = same[0]
            elif free:
                self.slot_of[config] = free.pop(0)
                self.loads[self.slot_of[config]] = plan
            else:
                used = [s for s, p in enumerate(self.bank.plans) if p is not None]
                raise SteeringError(
                    f"{len(plans)} distinct steering configurations, the live bank has "
                    f"{self.bank.slots} slots and {len(used)} of them ({used}) hold your "
                    f"plans; make the bank larger or unload some"
                )
        self.lent = sorted(self.loads)
        self.restore_rows = _row_state(self.bank)

    def load(self) -> None:
        """Put this call's plans in their slots (every slot, for a temporary bank)."""
        if self.owned:
            self.bank.load_all({s: self.loads.get(s) for s in range(self.bank.slots)})
        elif self.loads:
            self.bank.load_all(self.loads)

    def close(self) -> None:
        try:
            if self.owned:
                self.bank.revert()
            else:
                if self.lent:
                    self.bank.load_all({s: None for s in self.lent})
                _restore_rows(self.bank, self.restore_rows)
        finally:
            self._lock.release()


def _row_state(bank):
    """The user's row assignment of a live bank, to put back after the call."""
    if getattr(bank, "_uniform", False):
        return ("all", bank._uniform_slot)
    rows = getattr(bank, "_row_slot", None)
    return ("rows", None if rows is None else rows.detach().clone())


def _restore_rows(bank, state) -> None:
    if state is None:
        return
    kind, value = state
    if kind == "all":
        bank.assign_all(value)
    elif value is not None:
        bank.assign(value)
    else:
        bank._row_slot = None


def _prepare(model, tokenizer, prompts: Sequence[str], steer: Sequence[SteerSpec] | None):
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)):
        raise SteeringError(f"prompts must be a list of strings, got {type(prompts).__name__}")
    if not prompts:
        raise SteeringError("prompts is empty: pass at least one prompt string")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise SteeringError(f"prompts[{i}] must be a string, got {type(p).__name__} ({p!r:.60})")
    if isinstance(steer, (Steer, SteeringPlan)) or (
        steer is not None and not isinstance(steer, (list, tuple))
    ):
        raise SteeringError(
            f"steer must be a list with one entry per prompt (None, a SteeringPlan or a Steer), "
            f"got a bare {type(steer).__name__}; write steer=[...]"
        )
    specs = [None] * len(prompts) if steer is None else [_as_steer(s) for s in steer]
    if len(specs) != len(prompts):
        raise SteeringError(f"{len(prompts)} prompts but {len(specs)} steer entries")
    key = lambda s: (id(s.plan), s.strength, s.positions)  # noqa: E731  plans compare by identity
    configs: dict[tuple, int] = {}
    plans: dict[int, SteeringPlan] = {}
    for s in specs:
        if s is not None and key(s) not in configs:
            configs[key(s)] = len(configs)
            plans[configs[key(s)]] = s.resolved()
    row_slots = [-1 if s is None else configs[key(s)] for s in specs]
    return plans, row_slots


def _encode(tokenizer, prompts, device):
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(list(prompts), return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
    return {k: v.to(device) for k, v in enc.items()}


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    steer: Sequence[SteerSpec] | None = None,
    return_ids: bool = False,
    monitors=None,
    return_monitors: bool = False,
    **gen_kwargs,
):
    """Completions (strings) for `prompts`, request i steered by steer[i] (None = unsteered).

    gen_kwargs go to HF `model.generate` (greedy or sampling, DynamicCache or
    cache_implementation="static", ...). With return_ids, also HF's output (the full ids, or
    the GenerateOutput when return_dict_in_generate=True). With monitors (a list of Monitors
    for every row, or one list per prompt) and return_monitors=True, also the readings:
    `readings[i][name]`, one float per generated token of row i, read in the same forwards
    (steerfast/monitored.py). Returns texts, (texts, out), (texts, readings) or
    (texts, out, readings).
    """
    plans, row_slots = _prepare(model, tokenizer, prompts, steer)
    rows_mon = monitored.row_monitors(monitors, len(prompts))
    wanted = monitored.union(rows_mon)
    if wanted and not return_monitors:
        raise SteeringError("monitors= without return_monitors=True would drop the readings; pass both")
    if wanted:
        monitored.check_options(model, gen_kwargs)
    factor = _row_factor(model, gen_kwargs)
    lease = _BankLease(model, plans)
    bank = lease.bank
    reader = None
    try:
        with bank.lock:
            lease.load()
            rows = [-1 if c < 0 else lease.slot_of[c] for c in row_slots]
            bank.assign(torch.tensor(rows, dtype=torch.long).repeat_interleave(factor))
            enc = _encode(tokenizer, prompts, next(model.parameters()).device)
            gen_kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
            if wanted:
                reader = MonitorReader(model, wanted)
                streamer = gen_kwargs.get("streamer")
                if isinstance(streamer, monitored.MonitorStreamer):
                    streamer.reader = reader
            with torch.no_grad():
                out = model.generate(**enc, **gen_kwargs)
            values = None if reader is None else reader.readings()
    finally:
        if reader is not None:
            reader.close()
        lease.close()
    ids = out if isinstance(out, torch.Tensor) else out.sequences
    new_ids = ids[:, enc["input_ids"].shape[1] :]
    texts = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
    result = (texts, out) if return_ids else (texts,)
    if return_monitors:
        row_mon = [r for r in rows_mon for _ in range(factor)]
        lengths = monitored.generated_lengths(new_ids, monitored.eos_ids(model, gen_kwargs))
        names = [m.name for m in wanted]
        empty = values is None or values.shape[0] == 0
        result += ([{} for _ in row_mon] if empty else monitored.per_row(values, names, row_mon, lengths),)
    return result if len(result) > 1 else texts


def stream(model, tokenizer, prompt: str, steer: SteerSpec = None, monitors=None, **gen_kwargs) -> Iterator:
    """Yield the steered completion of one prompt piece by piece (HF TextIteratorStreamer).

    With monitors (a list of Monitors), each item is (text piece, {name: [reading per token
    of the piece]}); joined, they give generate's text and readings.
    """
    from transformers import TextIteratorStreamer

    if not isinstance(prompt, str):
        raise SteeringError(
            f"stream() takes one prompt string, got {type(prompt).__name__}; use generate() for a list"
        )
    if "streamer" in gen_kwargs:
        raise SteeringError("stream() makes its own streamer; do not pass streamer=")
    wanted = monitored.row_monitors(monitors, 1)[0]
    extra = {"monitors": [wanted], "return_monitors": True} if wanted else {}
    if wanted:
        monitored.check_options(model, gen_kwargs)
        streamer = monitored.MonitorStreamer(tokenizer, [m.name for m in wanted])
    else:
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    errors: list[BaseException] = []

    def run():
        try:
            generate(model, tokenizer, [prompt], [steer], streamer=streamer, **extra, **gen_kwargs)
        except BaseException as exc:  # re-raised in the consumer's thread
            errors.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    yield from streamer
    worker.join()
    if errors:
        raise errors[0]
