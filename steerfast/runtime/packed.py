"""Row maps for transformers' continuous-batching forwards (docs/architecture.md, "Many requests, one batch").

The engine packs every live request into one row `(1, ΣT)`: `cu_seq_lens_q` marks where each
request's tokens start, `position_ids` gives each token's real position, and there is no
`past_key_values` and no padding mask. Which request each packed sequence is comes from the
engine's batch (`requests_in_batch`, in packing order), handed over explicitly: the serving
engine's model runner (steerfast/serve/seam.py) wraps each forward in `PackedRows.step(states)`.
A stock transformers manager (`model.generate_batch` under `patch()`) has no such seam; only
there, and only unless `require_seam` is set (the Engine sets it), the batch is found by the
legacy walk up the forward's call stack to the batch processor's `_generation_step`.

Per step the host builds two small (R+1,) tensors (slot and prompt length per request, the
last entry a sentinel for padding tokens); everything per token is tensor ops, once per
forward of the decoder stack, none per layer.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

import torch
from torch import Tensor

from ..errors import SteeringError
from .rows import POLICY_CODES


def _stack_batch() -> list | None:
    """Legacy (stock managers only): `requests_in_batch` of the `_generation_step` up the stack.

    None if not found.
    """
    frame = sys._getframe(3)
    for _ in range(64):
        if frame is None:
            return None
        if frame.f_code.co_name == "_generation_step":
            bp = frame.f_locals.get("self")
            io = getattr(bp, "inputs_and_outputs", None)
            if io is not None:
                if hasattr(io, "io_pairs"):  # async IOs: the pair being computed
                    io = io.io_pairs[io.current_pair].host_io
                return getattr(io, "requests_in_batch", None)
        frame = frame.f_back
    return None


def is_packed_call(kwargs: dict) -> bool:
    return "cu_seq_lens_q" in kwargs and kwargs.get("past_key_values") is None


def request_key(request_id: str) -> str:
    """Forked children (`id__child#i`, num_return_sequences) steer like their parent."""
    return request_id.split("__child#", 1)[0]


def request_identity(state) -> tuple[str, float | None, bool]:
    """(request key, creation stamp, resumed) for per-request state kept across steps (gates).

    A new request reusing an id has a new stamp (its state starts afresh); forked children
    (stamp None) share their parent's. A request transformers evicted and re-queued keeps
    what it had: offloaded to the CPU, it is the same state object (same stamp); soft reset
    (no CPU pool, the default), it is a new RequestState with a new `created_time`, the same
    id, and `_true_initial_tokens` set to its true prompt length -- `resumed` says so, and its
    decided gate is kept (docs/conditions.md, "Continuous batching").
    """
    child = "__child#" in state.request_id
    stamp = None if child else getattr(state, "created_time", None)
    return request_key(state.request_id), stamp, bool(getattr(state, "_true_initial_tokens", 0))


def prompt_length(state) -> int:
    """The request's true prompt length, also after the engine re-queued it with its
    generated tokens folded into `initial_tokens`."""
    true = getattr(state, "_true_initial_tokens", 0)
    return int(true) if true else len(state.initial_tokens)


class PackedRows:
    """`bank.packed_rows`: row maps of a packed call, or None for any other call.

    slot_of: request id -> bank slot (absent = unsteered). A one-plan bank (patch()) puts
    every request on its uniform slot. `step(states)` declares the requests (transformers'
    FutureRequestState list, packing order) of the forward run inside it, on this thread.
    """

    def __init__(self, bank, require_seam: bool = False):
        self.bank = bank
        self.slot_of: dict[str, int] = {}
        self.lock = threading.Lock()
        self.require_seam = require_seam
        self._local = threading.local()

    @contextmanager
    def step(self, states: list):
        self._local.states = states
        try:
            yield
        finally:
            self._local.states = None

    def current(self) -> list | None:
        states = getattr(self._local, "states", None)
        if states is None and not self.require_seam:
            states = _stack_batch()
        return states

    def __call__(self, args: tuple, kwargs: dict) -> list[Tensor] | None:
        if not is_packed_call(kwargs):
            return None
        states = self.current()
        if states is None:
            raise SteeringError(
                "a packed (continuous-batching) forward reached a steered model outside a "
                "declared engine step (PackedRows.step; steerfast.serve.seam's model runner)"
            )
        ids = kwargs.get("input_ids")
        if ids is None and args and isinstance(args[0], torch.Tensor):
            ids = args[0]  # passed by position (gpt2's LM head does)
        ref = ids if ids is not None else kwargs.get("inputs_embeds")
        if ref is None:
            raise SteeringError("a packed forward with neither input_ids nor inputs_embeds")
        n_tokens = ref.shape[1]
        if sum(fs.query_length for fs in states) > n_tokens:
            raise SteeringError("packed forward does not match the engine's prepared step")
        bank = self.bank
        with self.lock:
            if bank._uniform:
                slots = [bank._uniform_slot] * len(states)
            else:
                slots = [self.slot_of.get(request_key(fs.state.request_id), -1) for fs in states]
        lens = [prompt_length(fs.state) for fs in states]
        seq_slot = torch.tensor(slots + [-1], dtype=torch.long)
        seq_prompt_len = torch.tensor(lens + [0], dtype=torch.long)
        maps = packed_row_maps(
            kwargs["cu_seq_lens_q"],
            kwargs["position_ids"],
            len(states),
            n_tokens,
            seq_slot,
            seq_prompt_len,
            bank.lane_code.to(ref.device),
            bank.lane_n.to(ref.device),
            bank.entries,
        )
        if bank.gates.active:  # conditional plans: each request's gate (runtime/gates.py)
            requests = [request_identity(fs.state) for fs in states]
            maps = bank.gates.packed_step(
                kwargs["cu_seq_lens_q"],
                kwargs["position_ids"],
                n_tokens,
                requests,
                seq_slot,
                seq_prompt_len,
                maps,
            )
        return maps


def packed_masks(
    cu_seq_lens_q: Tensor, position_ids: Tensor, n_requests: int, n_tokens: int, seq_prompt_len: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """(request index per token (N,), policy masks (N,) bool + 'real_pos').

    Tokens past the last request (padding) get index n_requests (the sentinel).
    """
    device = position_ids.device
    tok = torch.arange(n_tokens, device=device, dtype=torch.long)
    ends = cu_seq_lens_q[1 : n_requests + 1].to(device=device, dtype=torch.long)
    seq = torch.searchsorted(ends, tok, right=True)  # (N,) in 0..R
    pos = position_ids.reshape(-1)[:n_tokens].to(torch.long)
    P = seq_prompt_len.to(device)[seq]
    real = seq < n_requests
    prompt_last = real & (pos == P - 1)
    generated = real & (pos >= P)
    # every generated token is the last of its call in a decode step; a request re-prefilled
    # after eviction keeps that meaning, so `last` steers it like `from_prompt_end`
    return seq, {
        "prefix": real & (pos < P),
        "prompt_last": prompt_last,
        "last": prompt_last | generated,
        "from_prompt_end": prompt_last | generated,
        "all": real,
        "real_pos": pos.clamp(min=0),
    }


def packed_row_maps(
    cu_seq_lens_q: Tensor,
    position_ids: Tensor,
    n_requests: int,
    n_tokens: int,
    seq_slot: Tensor,
    seq_prompt_len: Tensor,
    lane_code: Tensor,
    lane_n: Tensor,
    entries: int,
) -> list[Tensor]:
    """One (N,) int32 map per lane: slot*entries + offset, -1 = untouched.

    seq_slot / seq_prompt_len: (R+1,) per request in packing order, last = padding sentinel.
    """
    seq, m = packed_masks(cu_seq_lens_q, position_ids, n_requests, n_tokens, seq_prompt_len)
    stacked = torch.stack([m[name] for name in POLICY_CODES], dim=0)  # (5, N)
    real_pos = m["real_pos"]
    row_slot = seq_slot.to(position_ids.device)[seq]
    valid = row_slot >= 0
    slot = row_slot.clamp(min=0)
    tok = torch.arange(n_tokens, device=slot.device)
    maps = []
    for lane in range(lane_code.shape[0]):
        code = lane_code[lane][slot]
        n = lane_n[lane][slot]
        is_prefix = code == POLICY_CODES["prefix"]
        sel = stacked[code.clamp(min=0), tok]
        sel = sel & valid & (code >= 0) & (~is_prefix | (real_pos < n))
        entry = slot * entries + torch.where(is_prefix, real_pos.clamp(max=entries - 1), 0)
        maps.append(torch.where(sel, entry, -1).to(torch.int32))
    return maps
