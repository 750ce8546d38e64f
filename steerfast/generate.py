"""Per-request steering on top of HF generate: one batch, each row its own plan and strength.

    generate(model, tok, ["a", "b", "c"], steer=[Steer(caa_plan, 4.0), None, Steer(sadi_plan)],
             max_new_tokens=32)

Requests with the same (plan, strength, positions) share a slot of the model's SteeringBank
(a temporary one is made and reverted if the model has none). Calls sharing a bank are
serialised by its lock: two threads get exactly what they would get one after the other.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Union

import torch

from .errors import SteeringError
from .plan import SteeringPlan
from .runtime.bank import _HANDLE_ATTR, SteeringBank


@dataclass(frozen=True)
class Steer:
    """One request's steering: a plan, optionally with its own strength and positions."""
    plan: SteeringPlan
    strength: Optional[float] = None
    positions: Optional[str] = None

    def resolved(self) -> SteeringPlan:
        plan = self.plan
        if self.strength is not None:
            plan = plan.with_strength(self.strength)
        if self.positions is not None:
            plan = plan.with_positions(self.positions)
        return plan


SteerSpec = Union[None, SteeringPlan, Steer]


def _as_steer(spec: SteerSpec) -> Optional[Steer]:
    if spec is None or isinstance(spec, Steer):
        return spec
    if isinstance(spec, SteeringPlan):
        return Steer(spec)
    raise SteeringError(f"steer entries must be None, a SteeringPlan or a Steer, got {type(spec).__name__}")


def _row_factor(gen_kwargs: dict) -> int:
    """How many rows HF generate makes of each input row."""
    beams = int(gen_kwargs.get("num_beams", 1) or 1)
    return beams if beams > 1 else int(gen_kwargs.get("num_return_sequences", 1) or 1)


class _BankLease:
    """The model's live bank, or a temporary one sized for this call."""

    def __init__(self, model, needed: int):
        live = getattr(model, _HANDLE_ATTR, None)
        if live is not None and live.single_plan:
            raise SteeringError("model is patched with a single plan (patch()); revert it first, "
                                "or make a SteeringBank(model, slots=S) for per-request steering")
        self.owned = live is None
        self.bank = live if live is not None else SteeringBank(model, slots=max(1, needed))
        if needed > self.bank.slots:
            raise SteeringError(f"{needed} distinct steering configurations, the bank has "
                                f"{self.bank.slots} slots")

    def close(self) -> None:
        if self.owned:
            self.bank.revert()


def _prepare(model, tokenizer, prompts: Sequence[str], steer: Optional[Sequence[SteerSpec]]):
    if isinstance(prompts, str):
        raise SteeringError("prompts must be a list of strings")
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


def generate(model, tokenizer, prompts: Sequence[str], steer: Optional[Sequence[SteerSpec]] = None,
             return_ids: bool = False, **gen_kwargs):
    """Completions (strings) for `prompts`, request i steered by steer[i] (None = unsteered).

    gen_kwargs go to HF `model.generate` (greedy or sampling, DynamicCache or
    cache_implementation="static", ...). With return_ids, also HF's output (the full ids, or
    the GenerateOutput when return_dict_in_generate=True).
    """
    plans, row_slots = _prepare(model, tokenizer, prompts, steer)
    lease = _BankLease(model, len(plans))
    bank = lease.bank
    try:
        with bank.lock:
            bank.load_all({slot: plans.get(slot) for slot in range(bank.slots)})
            factor = _row_factor(gen_kwargs)
            bank.assign(torch.tensor(row_slots).repeat_interleave(factor))
            enc = _encode(tokenizer, prompts, next(model.parameters()).device)
            gen_kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
            with torch.no_grad():
                out = model.generate(**enc, **gen_kwargs)
    finally:
        lease.close()
    ids = out if isinstance(out, torch.Tensor) else out.sequences
    texts = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return (texts, out) if return_ids else texts


def stream(model, tokenizer, prompt: str, steer: SteerSpec = None, **gen_kwargs) -> Iterator[str]:
    """Yield the steered completion of one prompt piece by piece (HF TextIteratorStreamer)."""
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    errors: list[BaseException] = []

    def run():
        try:
            generate(model, tokenizer, [prompt], [steer], streamer=streamer, **gen_kwargs)
        except BaseException as exc:   # re-raised in the consumer's thread
            errors.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    yield from streamer
    worker.join()
    if errors:
        raise errors[0]
