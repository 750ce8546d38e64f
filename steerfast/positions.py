"""Position policies (docs/architecture.md, Positions): which rows of a forward call a plan steers.

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
        if not (arg.isascii() and arg.isdigit()) or int(arg) < 1:
            raise PlanError(f"positions {text!r}: prefix needs a positive length, e.g. 'prefix:4'")
        return name, int(arg)
    if arg:
        raise PlanError(f"positions {text!r}: only prefix takes an argument")
    return name, 0


@dataclass
class CallInfo:
    """Row geometry of one forward call of the decoder stack.

    mask: (B, past + T) attention mask of the whole sequence so far (1 = real token).
    prompt_len: 0-dim tensor, padded prompt length P (columns < P are prompt, >= P generated).
    prompt_real: (B,) number of real prompt tokens per row.
    """

    batch: int
    past: int
    length: int
    mask: Tensor
    prompt_len: Tensor
    prompt_real: Tensor

    def masks(self) -> dict[str, Tensor]:
        """Base (B, T) masks of this call, shared by every policy, plus the real position."""
        T, past = self.length, self.past
        mask = self.mask.bool()
        cur = mask[:, past : past + T]
        real_pos = mask.long().cumsum(1)[:, past : past + T] - 1
        col = torch.arange(past, past + T, device=mask.device).unsqueeze(0)
        in_prompt = col < self.prompt_len
        prompt_last = cur & in_prompt & (real_pos == (self.prompt_real - 1).unsqueeze(1))
        generated = cur & ~in_prompt
        return {
            "prefix": cur & in_prompt,  # further limited to real_pos < n
            "prompt_last": prompt_last,
            "last": prompt_last | (generated & (col == past + T - 1)),
            "from_prompt_end": prompt_last | generated,
            "all": cur,
            "real_pos": real_pos.clamp(min=0),
        }

    def select(self, policy: str) -> tuple[Tensor, Tensor]:
        """(selected (B, T) bool, entry offset (B, T) long) for a policy string."""
        name, n = parse_policy(policy)
        m = self.masks()
        if name == "prefix":
            return m["prefix"] & (m["real_pos"] < n), m["real_pos"]
        return m[name], torch.zeros_like(m["real_pos"])


def _one_mask(mask):
    """HF passes a dict of 4D masks per attention type (qwen2, qwen3, ...): the full-attention
    one sees every token so far; a sliding-only model gives its sliding mask."""
    if not isinstance(mask, dict):
        return mask
    if mask.get("full_attention") is not None:
        return mask["full_attention"]
    return next((m for m in mask.values() if m is not None), None)


class CallTracker:
    """Turns the arguments of each decoder-stack forward into a CallInfo.

    A call with no past is a prompt (prefill); the tracker remembers its length so later
    calls (decode steps with a KV cache) know which columns are generated. Plain attribute
    reads only, so it traces under torch.compile.
    """

    def __init__(self, forward_fn):
        self._names = [
            n
            for n, p in inspect.signature(forward_fn).parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        self.prompt_len: Tensor | None = None
        self.prompt_tokens = 0  # the same on the host: a call with past >= it is past the prompt
        self.prompt_real: Tensor | None = None
        self.info: CallInfo | None = None
        self.seen = 0
        self.columns: Tensor | None = None  # the 2D padding mask of the sequence so far

    def _padding_from_4d(self, mask: Tensor, B: int, past: int, T: int) -> Tensor:
        """The (B, past + T) padding mask behind HF's 4D (B, 1, T, K) static-cache mask.

        A real token is seen by some query of the call (itself at least); a padding column by
        none. With a sliding window, old columns fall out of every query's view, and a
        sliding cache layout (K < past + T) has no absolute columns at all: columns before
        this call come from the previous call's mask, and new ones are read off the 4D mask
        when it has absolute columns (else they are real: decode tokens always are).
        """
        allowed = mask[:, 0] if mask.dtype == torch.bool else mask[:, 0] == 0
        if allowed.shape[-1] >= past + T:
            seen = allowed[:, :, : past + T].any(1)
        else:
            seen = torch.ones(B, past + T, dtype=torch.bool, device=mask.device)
        prev = self.columns
        if past > 0 and prev is not None and tuple(prev.shape) == (B, past):
            seen = torch.cat([prev.bool(), seen[:, past:]], dim=1)
        return seen

    def _arg(self, args, kwargs, name):
        if name in kwargs:
            return kwargs[name]
        if name in self._names:
            i = self._names.index(name)
            if i < len(args):
                return args[i]
        return None

    def begin(self, args, kwargs) -> CallInfo:
        ids = self._arg(args, kwargs, "input_ids")
        ref = ids if ids is not None else self._arg(args, kwargs, "inputs_embeds")
        if ref is None:
            raise PlanError("steered forward needs input_ids or inputs_embeds")
        B, T = ref.shape[0], ref.shape[1]
        mask = _one_mask(self._arg(args, kwargs, "attention_mask"))
        if mask is not None and mask.dim() == 2:
            past = mask.shape[1] - T
        else:
            cache = self._arg(args, kwargs, "past_key_values")
            if cache is None:  # transformers >= 5.24 passes it as `cache`
                cache = self._arg(args, kwargs, "cache")
            past = cache.get_seq_length() if cache is not None else 0
            if isinstance(past, Tensor):
                # an initialised static cache counts its tokens on the device: reading that
                # would sync, so continue our own count (a fresh cache reports a plain 0)
                past = self.seen
            if mask is not None and mask.dim() == 4:
                mask = self._padding_from_4d(mask, B, past, T)
            else:
                mask = torch.ones(B, past + T, dtype=torch.long, device=ref.device)
        self.seen = past + T
        self.columns = mask
        if past == 0 or self.prompt_real is None or self.prompt_real.shape[0] != B:
            self.prompt_len = torch.full((), T, dtype=torch.long, device=ref.device)
            self.prompt_tokens = T
            self.prompt_real = mask[:, :T].long().sum(1)
        self.info = CallInfo(B, past, T, mask, self.prompt_len, self.prompt_real)
        return self.info
