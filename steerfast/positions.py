"""Position policies (DESIGN §3): which rows of a forward call a plan steers.

Everything here is computed once per forward call of the decoder stack, from the
attention mask and the shapes of the call, with tensor ops only (no host sync):

    prefix:n         the first n real prompt tokens, prefill only (ActAdd); entry = position
    prompt_last      the prompt's last real token only (SADI, LAAI)
    last             the last token of every forward call: the prompt's end, then each new token
    from_prompt_end  the prompt's last token and every token after it (CAA)
    all              every real token
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .errors import PlanError

POLICIES = ("prefix", "prompt_last", "last", "from_prompt_end", "all")


def parse_policy(text: str) -> tuple[str, int]:
    """'prefix:4' -> ('prefix', 4); 'last' -> ('last', 0)."""
    name, _, arg = str(text).partition(":")
    if name not in POLICIES:
        raise PlanError(f"unknown positions {text!r}; expected one of prefix:N, " + ", ".join(POLICIES[1:]))
    if name == "prefix":
        if not arg.isdigit() or int(arg) < 1:
            raise PlanError(f"positions {text!r}: prefix needs a positive length, e.g. 'prefix:4'")
        return name, int(arg)
    if arg:
        raise PlanError(f"positions {text!r}: only prefix takes an argument")
    return name, 0


@dataclass
class CallInfo:
    """Row geometry of one forward call of the decoder stack.

    mask: (B, past + T) attention mask of the whole sequence so far (1 = real token).
    prompt_len: padded prompt length P (columns < P are prompt, >= P generated).
    prompt_real: (B,) number of real prompt tokens per row.
    """
    batch: int
    past: int
    length: int
    mask: Tensor
    prompt_len: int
    prompt_real: Tensor

    def select(self, policy: str) -> tuple[Tensor, Tensor]:
        """(selected (B, T) bool, entry offset (B, T) long) for a policy string."""
        name, n = parse_policy(policy)
        T, past = self.length, self.past
        mask = self.mask.bool()
        cur = mask[:, past:past + T]
        real_pos = mask.long().cumsum(1)[:, past:past + T] - 1
        col = torch.arange(past, past + T, device=mask.device).unsqueeze(0)
        in_prompt = col < self.prompt_len
        prompt_last = cur & in_prompt & (real_pos == (self.prompt_real - 1).unsqueeze(1))
        generated = cur & ~in_prompt
        zero = torch.zeros_like(real_pos)
        if name == "prefix":
            return cur & in_prompt & (real_pos < n), real_pos.clamp(min=0)
        if name == "prompt_last":
            sel = prompt_last
        elif name == "last":
            sel = prompt_last | (generated & (col == past + T - 1))
        elif name == "from_prompt_end":
            sel = prompt_last | generated
        else:
            sel = cur
        return sel, zero

    def row_entries(self, policy: str) -> Tensor:
        """(B*T,) int32 table entry per row of the flattened activation; -1 = untouched."""
        sel, offset = self.select(policy)
        return torch.where(sel, offset, -1).reshape(-1).to(torch.int32)


class CallTracker:
    """Turns the arguments of each decoder-stack forward into a CallInfo.

    A call with no past is a prompt (prefill); the tracker remembers its length so later
    calls (decode steps with a KV cache) know which columns are generated.
    """

    def __init__(self, forward_fn):
        self._sig = inspect.signature(forward_fn)
        self.prompt_len = 0
        self.prompt_real: Optional[Tensor] = None
        self.info: Optional[CallInfo] = None

    def begin(self, args, kwargs) -> CallInfo:
        bound = self._sig.bind_partial(*args, **kwargs).arguments
        extra = bound.get("kwargs", {})
        get = lambda k: bound.get(k, extra.get(k))  # noqa: E731
        ids, embeds = get("input_ids"), get("inputs_embeds")
        ref = ids if ids is not None else embeds
        if ref is None:
            raise PlanError("steered forward needs input_ids or inputs_embeds")
        B, T = ref.shape[0], ref.shape[1]
        mask = get("attention_mask")
        if mask is not None and mask.dim() == 2:
            past = mask.shape[1] - T
        else:
            cache = get("past_key_values")
            past = int(cache.get_seq_length()) if cache is not None else 0
            mask = torch.ones(B, past + T, dtype=torch.long, device=ref.device)
        if past == 0 or self.prompt_real is None or self.prompt_real.shape[0] != B:
            self.prompt_len = T
            self.prompt_real = mask[:, :T].long().sum(1)
        self.info = CallInfo(B, past, T, mask, self.prompt_len, self.prompt_real)
        return self.info
