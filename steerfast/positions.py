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
        cur = mask[:, past:past + T]
        real_pos = mask.long().cumsum(1)[:, past:past + T] - 1
        col = torch.arange(past, past + T, device=mask.device).unsqueeze(0)
        in_prompt = col < self.prompt_len
        prompt_last = cur & in_prompt & (real_pos == (self.prompt_real - 1).unsqueeze(1))
        generated = cur & ~in_prompt
        return {
            "prefix": cur & in_prompt,          # further limited to real_pos < n
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


class CallTracker:
    """Turns the arguments of each decoder-stack forward into a CallInfo.

    A call with no past is a prompt (prefill); the tracker remembers its length so later
    calls (decode steps with a KV cache) know which columns are generated. Plain attribute
    reads only, so it traces under torch.compile.
    """

    def __init__(self, forward_fn):
        self._names = [n for n, p in inspect.signature(forward_fn).parameters.items()
                       if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.prompt_len: Optional[Tensor] = None
        self.prompt_real: Optional[Tensor] = None
        self.info: Optional[CallInfo] = None
        self.seen = 0

    def _from_windowed(self, mask: Tensor, B: int, past: int, T: int) -> Tensor:
        """The 2D padding mask from a sliding-window 4D mask, which hides early keys from the
        last query. Each token sees itself iff it is real, so a prompt's padding is the
        mask's diagonal; a decode step adds one generated (always real) token."""
        if past == 0:
            diag = mask[:, 0, :T, :T].diagonal(dim1=1, dim2=2)
            return diag if diag.dtype == torch.bool else diag == 0
        previous = getattr(self, "_mask", None)
        if T != 1 or previous is None or previous.shape != (B, past):
            raise PlanError("cannot tell the padding of this call: the model has only sliding-window "
                            "attention masks and the call is neither a prompt nor a one-token decode "
                            "step after one (use a DynamicCache, or no padding)")
        return torch.cat([previous.bool(), torch.ones(B, T, dtype=torch.bool, device=previous.device)], 1)

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
        mask = self._arg(args, kwargs, "attention_mask")
        sliding_only = False
        if isinstance(mask, dict):
            # per attention type: the full-attention mask sees every real token so far; a
            # model whose layers all use a sliding window has only the windowed one
            sliding_only = "full_attention" not in mask
            mask = mask.get("full_attention", next(iter(mask.values()), None))
        if mask is not None and mask.dim() == 2:
            past = mask.shape[1] - T
        else:
            cache = self._arg(args, kwargs, "past_key_values")
            if cache is None:                  # transformers >= 5.24 passes it as `cache`
                cache = self._arg(args, kwargs, "cache")
            past = cache.get_seq_length() if cache is not None else 0
            if isinstance(past, Tensor):
                # an initialised static cache counts its tokens on the device: reading that
                # would sync, so continue our own count (a fresh cache reports a plain 0)
                past = self.seen
            if mask is not None and mask.dim() == 4 and sliding_only:
                mask = self._from_windowed(mask, B, past, T)
            elif mask is not None and mask.dim() == 4:
                # HF hands static-cache calls a 4D (B, 1, T, K) mask: the call's last query
                # sees every real token so far, which recovers the 2D padding mask
                last = mask[:, 0, -1, :past + T]
                mask = last if last.dtype == torch.bool else last == 0
            else:
                mask = torch.ones(B, past + T, dtype=torch.long, device=ref.device)
        self._mask = mask
        self.seen = past + T
        if past == 0 or self.prompt_real is None or self.prompt_real.shape[0] != B:
            self.prompt_len = torch.full((), T, dtype=torch.long, device=ref.device)
            self.prompt_real = mask[:, :T].long().sum(1)
        self.info = CallInfo(B, past, T, mask, self.prompt_len, self.prompt_real)
        return self.info
