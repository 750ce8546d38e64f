"""Prefix caching keyed by steering (docs/serving.md, "Prefix caching under steering").

transformers' paged cache shares a KV block between requests whose tokens hash alike: the
hash of block b chains the hashes of blocks 0..b-1 and starts from nothing. A steered
request's KV is not a function of its tokens alone, so here the chain starts from a *salt*
of the request's steering configuration (the engine's configuration key: plan name, plan
version, strength, positions per entry). Unsteered requests keep transformers' own hashes
(no salt); two configurations never meet, since their chains start apart (a 64-bit blake2b
collision aside, the same odds transformers already takes between two token blocks).

Which blocks of a steered request may be shared at all: a position's steering depends on
the configuration, its position, and on where the prompt ends (`prompt_last` steers the
last prompt token, `last` / `from_prompt_end` every generated token, `prefix:n` stops at the
prompt's end). For positions before the last prompt token (0..P-2) every policy's mask
depends on (configuration, position) only, so those blocks are shareable under the salt;
the block holding position P-1, and any later one, is never registered nor matched for a
steered request. Unsteered requests share every complete block, as transformers does.
A request whose plan's gate averages over the prompt (`reads_whole_prompt`) shares none:
its gate is read from the prompt's activations in its own prefill, all of them.

The seam: `KeyedPrefixCache` subclasses transformers' `PagedAttentionCache` and overrides
its two public prefix methods (`search_prefix_match`, `mark_complete_blocks`), the ones the
scheduler and the batch processor call with the request. The manager builds its cache
itself, so `adopt()` turns that instance into a `KeyedPrefixCache` after checking every
internal it relies on; `check_internals()` fails loudly naming the transformers version.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from ..errors import SteeringError
from . import internals

TESTED_TRANSFORMERS = internals.CHECKED_RANGE  # the releases this was checked against


def config_salt(key) -> int | None:
    """The chain start for a configuration key (None = unsteered: transformers' own hashes)."""
    if key is None:
        return None
    return int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "little")


@dataclass
class _Entry:
    salt: int | None
    limit: int | None  # tokens (from position 0) whose blocks may be shared; None = all


@dataclass
class PrefixStats:
    """What the cache shared, from its own block tables (see KeyedPrefixCache)."""

    matched_requests: int = 0
    matched_blocks: int = 0
    matched_tokens: int = 0
    registered_blocks: int = 0
    per_request: dict[str, int] = field(default_factory=dict)  # request id -> tokens reused


class PrefixKeys:
    """request id -> steering salt and shareable length; the engine fills it per request.

    A request the engine did not register (transformers' warmup, or a forked child whose
    parent is gone) shares nothing.
    """

    def __init__(self):
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.stats = PrefixStats()

    def register(self, request_id: str, key, prompt_len: int, share: bool = True) -> None:
        """share=False: the request neither reuses nor offers blocks (reads_whole_prompt)."""
        if not share:
            self.forget(request_id)
            return
        # steered: blocks entirely before the last prompt token (positions 0..P-2)
        limit = None if key is None else max(prompt_len - 1, 0)
        with self._lock:
            self._entries[request_id] = _Entry(config_salt(key), limit)

    def forget(self, request_id: str) -> None:
        with self._lock:
            self._entries.pop(request_id, None)
            self.stats.per_request.pop(request_id, None)

    def entry(self, request_id: str) -> _Entry | None:
        parent = request_id.split("__child#", 1)[0]  # forked children steer like their parent
        with self._lock:
            return self._entries.get(request_id) or self._entries.get(parent)


def reads_whole_prompt(plan) -> bool:
    """True for a plan whose gate averages over the prompt (a Condition with aggregate "mean").

    The gate is read from the activations the step computes, and a cached prefix is not
    computed again: a mean over the rest of the prompt would decide another gate. Such
    requests share no blocks; a "last"-token gate reads the last prompt token, which is never
    taken from the cache, so it shares like any steered request.
    """
    gate = getattr(plan, "condition", None)
    return gate is not None and any(c.aggregate == "mean" for c in gate.conditions)


def check_internals() -> None:
    """Raise naming the transformers version if what KeyedPrefixCache relies on is gone
    (serve/internals.py's PREFIX table: the two methods it overrides with their parameters,
    their callers, the ledger / allocator members it uses) or the version is outside the
    range it was checked against."""
    try:
        internals.check(internals.PREFIX, "steerfast's steering-keyed prefix cache (serve/prefix.py)")
    except SteeringError as exc:
        raise SteeringError(f"{exc}. Serve with --no-prefix-cache, or update serve/prefix.py.") from exc


def _chain(salt: int | None, token_ids: list[int], page: int, n_blocks: int):
    """Hashes of blocks 0..n_blocks-1, chained from `salt` (transformers' block hash)."""
    from transformers.generation.continuous_batching.cache_allocators.cache_allocator import (
        compute_block_hash,
    )

    h = salt
    for b in range(n_blocks):
        h = compute_block_hash(h, token_ids[b * page : (b + 1) * page])
        yield h


def _base_cache_cls():
    from transformers.generation.continuous_batching.cache import PagedAttentionCache

    return PagedAttentionCache


def _matched_blocks(cache, salt: int | None, ids: list[int]) -> tuple[int, dict[str, list[int]]]:
    """The cached blocks each of `cache`'s allocators holds for `ids` (its hashes chained from
    `salt`), and the tokens every allocator matched (0: none). Like transformers, never the
    block of the last token (one token is always prefilled)."""
    prefix_len, matched = None, {}
    for name, alloc in cache.cache_allocators.items():
        page = alloc.tokens_per_page
        blocks = []
        for h in _chain(salt, ids, page, (len(ids) - 1) // page):
            block = alloc.ledger.hash_to_block.get(h)
            if block is None:
                break
            blocks.append(block)
        n = len(blocks) * page
        prefix_len = n if prefix_len is None else min(prefix_len, n)
        matched[name] = blocks
        if not blocks:
            break
    return prefix_len or 0, matched


def _count_match(cache, request_id: str, prefix_len: int, matched: dict[str, list[int]]) -> None:
    """Add a request's reused prefix (acquired already) to the keys' PrefixStats."""
    stats = cache.prefix_keys.stats
    with cache.prefix_keys._lock:
        stats.matched_requests += 1
        stats.matched_tokens += prefix_len
        stats.matched_blocks += min(len(cache.cache_allocators[n].block_table[request_id]) for n in matched)
        stats.per_request[request_id] = prefix_len


def _mark_chain(keys: PrefixKeys, alloc, request_id, token_ids, new_blocks, salt) -> None:
    """transformers' CacheAllocator.mark_complete_blocks with the chain started at `salt`."""
    from transformers.generation.continuous_batching.cache_allocators.cache_allocator import (
        compute_block_hash,
    )

    table = alloc.block_table[request_id]
    page = alloc.tokens_per_page
    parent = salt
    for i, block in enumerate(table):
        h = alloc.ledger.block_to_hash.get(block)
        if h is None:
            tokens = token_ids[i * page : (i + 1) * page]
            if new_blocks == 0 or len(tokens) < page:
                break
            h = compute_block_hash(parent, tokens)
            new_blocks -= 1
            same = alloc.ledger.register_new_hash(block, h)
            if same is not None:  # content already cached: adopt it, free ours
                alloc.ledger.acquire(same)
                table[i] = same
                if alloc.ledger.release(block):
                    alloc.pool.free_blocks(alloc.index, [block])
            else:
                with keys._lock:
                    keys.stats.registered_blocks += 1
        parent = h


def _make_cls():
    base = _base_cache_cls()

    class KeyedPrefixCache(base):
        """transformers' PagedAttentionCache whose block hashes start from the request's salt."""

        prefix_keys: PrefixKeys

        def search_prefix_match(self, request_id: str, prompt_ids: list[int]) -> int:
            if not self.use_prefix_sharing:
                return 0
            entry = self.prefix_keys.entry(request_id)
            if entry is None:
                return 0
            ids = prompt_ids if entry.limit is None else prompt_ids[: entry.limit + 1]
            prefix_len, matched = _matched_blocks(self, entry.salt, ids)
            if not prefix_len:
                return 0
            for name, blocks in matched.items():
                self.cache_allocators[name].acquire_prefix_blocks(request_id, prefix_len, blocks)
            _count_match(self, request_id, prefix_len, matched)
            return prefix_len

        def mark_complete_blocks(self, state, complete_blocks: dict[str, int]) -> None:
            from transformers.generation.continuous_batching.requests import RequestStatus

            if not self.allow_block_sharing or not complete_blocks or state.status == RequestStatus.FINISHED:
                return
            entry = self.prefix_keys.entry(state.request_id)
            if entry is None:
                return
            token_ids = state.initial_tokens + state.generated_tokens
            if entry.limit is not None:
                token_ids = token_ids[: entry.limit]
            for name, new_blocks in complete_blocks.items():
                alloc = self.cache_allocators[name]
                _mark_chain(self.prefix_keys, alloc, state.request_id, token_ids, new_blocks, entry.salt)

    return KeyedPrefixCache


_CLS = None


def keyed_cache_cls():
    global _CLS
    if _CLS is None:
        check_internals()
        _CLS = _make_cls()
    return _CLS


def adopt(cache, keys: PrefixKeys):
    """Make the manager's cache a KeyedPrefixCache using `keys` (before any request runs)."""
    cls = keyed_cache_cls()
    if type(cache) is cls:
        cache.prefix_keys = keys
        return cache
    if type(cache) is not _base_cache_cls():
        raise SteeringError(
            f"the continuous-batching cache is a {type(cache).__name__}, not transformers' "
            f"PagedAttentionCache: steering-keyed prefix caching cannot adopt it"
        )
    cache.prefix_keys = keys
    cache.__class__ = cls
    return cache


def prepare_manager(manager, keys: PrefixKeys):
    """Build the manager's batch processor now (public `warmup()`: no capture without CUDA
    graphs or compile) and key its cache; `start()` then reuses that processor."""
    if manager.batch_processor is None:
        manager.warmup()
    return adopt(manager.batch_processor.cache, keys)
