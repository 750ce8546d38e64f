"""Every private transformers name the serving seam touches, and the check that refuses to
serve where one is missing or the version is outside the range the seam was checked against.

The seam (serve/seam.py, serve/prefix.py, serve/engine.py, with runtime/packed.py, serve/device.py
and serve/metrics.py reading step state) subclasses and reads transformers' continuous
batching, which has no stable API: a rename upstream would otherwise surface as an
AttributeError in the middle of a step, or worse, as a silently unsteered request. So each name
is listed here with the file that relies on it, and `problems()` checks them all up front:

- method / function: exists (and, where given, has exactly these parameters: the seam
  overrides or calls it positionally);
- accepts: a callable taking at least these keyword arguments (what the engine passes);
- attr: an instance or class attribute (a `self.<name>` assignment in the class or a base,
  a slot, a property or a method);
- source: a string the module's code holds (the keys of a step's model inputs);
- calls: a method still calls the one the seam overrides (else the override is dead code).

SEAM is what every served engine needs (serve/seam.py checks it before building the manager);
PREFIX adds what the steering-keyed prefix cache needs (serve/prefix.py checks it).
"""

from __future__ import annotations

import importlib
import inspect
import os

from packaging.version import Version

from ..errors import SteeringError

# The transformers releases the seam was checked against: the lowest and highest of these ran
# the serve tests (docs/versions.md); every release between them passed problems() below.
CHECKED_MIN = "5.19.0"  # 5.17 has no model runner; 5.18 lacks names (see docs/versions.md)
CHECKED_MAX = "5.25.0"
CHECKED_RANGE = f">={CHECKED_MIN},<={CHECKED_MAX}"
# serve on a transformers outside CHECKED_RANGE anyway (the names are still checked)
UNCHECKED_ENV = "STEERFAST_ALLOW_UNCHECKED_TRANSFORMERS"

CB = "transformers.generation.continuous_batching"
MODULES = {
    "api": f"{CB}.continuous_api",
    "runner": f"{CB}.model_runner",
    "requests": f"{CB}.requests",
    "io": f"{CB}.input_outputs",
    "logits": f"{CB}.cb_logits_processors",
    "scheduler": f"{CB}.scheduler",
    "utils": f"{CB}.utils",
    "cache": f"{CB}.cache",
    "allocator": f"{CB}.cache_allocators.cache_allocator",
    "pool": f"{CB}.cache_allocators.cache_pool",
    "transformers": "transformers",
}

SEAM_PY, ENGINE_PY, PACKED_PY, PREFIX_PY = (
    "serve/seam.py",
    "serve/engine.py",
    "runtime/packed.py",
    "serve/prefix.py",
)
# the keys of a step's model inputs (a TypedDict) the seam and the row maps read
MODEL_INPUTS = ("input_ids", "position_ids", "cu_seq_lens_q", "logits_indices", "logits_processor_args")

# (kind, module key, class or None, name, detail, user)
# fmt: off
SEAM = [
    ("method", "runner", "ModelRunner", "_forward_process_and_sample", ("self", "model", "batch_data", "carry_over_ids", "prev_output_ids", "output_ids"), SEAM_PY),
    ("attr", "runner", "ModelRunner", "inputs_and_outputs", None, SEAM_PY),
    ("attr", "runner", "ModelRunner", "logit_processor", None, SEAM_PY),
    ("attr", "runner", "ModelRunner", "do_sample", None, SEAM_PY),
    ("attr", "runner", "ModelRunner", "return_logprobs", None, SEAM_PY),
    ("function", "runner", None, "infer_max_single_request_tokens", ("cache",), ENGINE_PY),
    ("attr", "logits", "ContinuousBatchingLogitsProcessorList", "do_processing", None, SEAM_PY),
    ("method", "logits", "ContinuousBatchingLogitsProcessorList", "__call__", ("self", "input_ids", "scores", "logits_processor_args"), SEAM_PY),
    ("attr", "io", "ContinuousBatchingIOs", "requests_in_batch", None, SEAM_PY),
    ("method", "io", "ContinuousBatchingIOs", "carry_over_tokens", ("self", "input_ids", "carry_over_ids", "prev_output_ids"), SEAM_PY),
    ("attr", "io", "ContinuousBatchingIOs", "compute_stream", None, "serve/device.py"),
    ("attr", "io", "ContinuousBatchingAsyncIOs", "io_pairs", None, PACKED_PY),
    ("attr", "io", "ContinuousBatchingAsyncIOs", "current_pair", None, PACKED_PY),
    ("attr", "io", "HostDeviceIOPair", "host_io", None, PACKED_PY),
    *[("attr", "io", "PagedAttentionArgs", key, None, f"{SEAM_PY}, {PACKED_PY}") for key in MODEL_INPUTS],
    ("source", "runner", None, "logits_to_keep", None, SEAM_PY),
    ("method", "api", "ContinuousBatchProcessor", "_generation_step", ("self", "model"), SEAM_PY),
    ("method", "api", "ContinuousBatchProcessor", "update_batch", ("self",), SEAM_PY),
    ("method", "api", "ContinuousBatchProcessor", "handle_batch_error", ("self", "error"), SEAM_PY),
    ("attr", "api", "ContinuousBatchProcessor", "model_runner", None, SEAM_PY),
    ("attr", "api", "ContinuousBatchProcessor", "inputs_and_outputs", None, f"{SEAM_PY}, {PACKED_PY}"),
    ("attr", "api", "ContinuousBatchProcessor", "scheduler", None, f"{SEAM_PY}, {ENGINE_PY}"),
    ("attr", "api", "ContinuousBatchProcessor", "use_async_batching", None, SEAM_PY),
    ("attr", "api", "ContinuousBatchProcessor", "cache", None, f"{ENGINE_PY}, {PREFIX_PY}"),
    ("attr", "scheduler", "Scheduler", "block_new_requests", None, SEAM_PY),
    ("attr", "scheduler", "Scheduler", "waiting_requests", None, ENGINE_PY),
    ("attr", "scheduler", "Scheduler", "active_requests", None, SEAM_PY),
    ("method", "api", "ContinuousBatchingManager", "_create_batch_processor", ("self",), SEAM_PY),
    ("method", "api", "ContinuousBatchingManager", "_generation_step", ("self",), SEAM_PY),
    ("accepts", "api", "ContinuousBatchingManager", "__init__", ("model", "generation_config", "continuous_batching_config", "workload_hints"), SEAM_PY),
    ("attr", "api", "ContinuousBatchingManager", "_generation_thread", None, ENGINE_PY),
    ("attr", "api", "ContinuousBatchingManager", "batch_processor", None, ENGINE_PY),
    ("attr", "api", "ContinuousBatchingManager", "output_router", None, ENGINE_PY),
    ("attr", "api", "ContinuousBatchingManager", "input_queue", None, ENGINE_PY),
    ("attr", "api", "ContinuousBatchingManager", "background_thread_status", None, ENGINE_PY),
    ("method", "api", "ContinuousBatchingManager", "warmup", ("self",), ENGINE_PY),
    ("method", "api", "ContinuousBatchingManager", "start", ("self",), ENGINE_PY),
    ("method", "api", "ContinuousBatchingManager", "is_running", ("self",), ENGINE_PY),
    ("accepts", "api", "ContinuousBatchingManager", "stop", ("block", "timeout"), ENGINE_PY),
    ("accepts", "api", "ContinuousBatchingManager", "add_request", ("input_ids", "request_id", "max_new_tokens", "streaming"), ENGINE_PY),
    ("method", "api", "ContinuousBatchingManager", "register_result_handler", ("self", "request_id", "callback"), ENGINE_PY),
    ("method", "api", "ContinuousBatchingManager", "cancel_request", ("self", "request_id"), ENGINE_PY),
    ("attr", "api", "OutputRouter", "_lock", None, ENGINE_PY),
    ("attr", "api", "OutputRouter", "result_handlers", None, ENGINE_PY),
    ("attr", "api", "BackgroundThreadStatus", "fatal_error", None, ENGINE_PY),
    ("source", "api", None, "_cached_continuous_batching_manager", None, SEAM_PY),
    ("accepts", "transformers", "ContinuousBatchingConfig", "__init__", ("allow_block_sharing", "page_size", "num_blocks", "max_batch_tokens", "use_cuda_graph", "use_async_batching"), ENGINE_PY),
    ("accepts", "utils", "WorkloadHints", "__init__", ("max_prompt_length", "max_generated_length", "num_requests"), ENGINE_PY),
    ("attr", "requests", "FutureRequestState", "state", None, f"{SEAM_PY}, {PACKED_PY}"),
    ("attr", "requests", "FutureRequestState", "has_new_token", None, SEAM_PY),
    ("attr", "requests", "FutureRequestState", "query_length", None, PACKED_PY),
    ("attr", "requests", "RequestState", "request_id", None, f"{SEAM_PY}, {PACKED_PY}"),
    ("attr", "requests", "RequestState", "initial_tokens", None, f"{SEAM_PY}, {PACKED_PY}"),
    ("attr", "requests", "RequestState", "generated_tokens", None, PREFIX_PY),
    ("attr", "requests", "RequestState", "_true_initial_tokens", None, PACKED_PY),
    ("attr", "requests", "RequestState", "created_time", None, PACKED_PY),
    ("attr", "requests", "RequestState", "status", None, PREFIX_PY),
    ("method", "requests", "RequestState", "generated_len", ("self",), SEAM_PY),
    ("attr", "requests", "RequestStatus", "FINISHED", None, PREFIX_PY),
    ("attr", "requests", "GenerationOutput", "generated_tokens", None, ENGINE_PY),
    ("method", "requests", "GenerationOutput", "is_finished", ("self",), ENGINE_PY),
    ("attr", "requests", "GenerationOutput", "error", None, ENGINE_PY),
    ("method", "cache", "PagedAttentionCache", "compute_free_capacity", ("self", "relative"), "serve/metrics.py"),
    ("attr", "cache", "PagedAttentionCache", "num_blocks", None, "serve/metrics.py"),
]

PREFIX = [
    ("method", "cache", "PagedAttentionCache", "search_prefix_match", ("self", "request_id", "prompt_ids"), PREFIX_PY),
    ("method", "cache", "PagedAttentionCache", "mark_complete_blocks", ("self", "state", "complete_blocks"), PREFIX_PY),
    ("method", "cache", "PagedAttentionCache", "evict_cached_blocks", ("self",), PREFIX_PY),
    ("attr", "cache", "PagedAttentionCache", "use_prefix_sharing", None, PREFIX_PY),
    ("attr", "cache", "PagedAttentionCache", "allow_block_sharing", None, PREFIX_PY),
    ("attr", "cache", "PagedAttentionCache", "cache_allocators", None, PREFIX_PY),
    ("function", "allocator", None, "compute_block_hash", ("parent_hash", "tokens"), PREFIX_PY),
    ("method", "allocator", "CacheAllocator", "acquire_prefix_blocks", ("self", "request_id", "prefix_len", "block_ids"), PREFIX_PY),
    ("method", "allocator", "CacheAllocator", "mark_complete_blocks", ("self", "request_id", "token_ids", "new_new_blocks"), PREFIX_PY),
    ("attr", "allocator", "CacheAllocator", "tokens_per_page", None, PREFIX_PY),
    ("attr", "allocator", "CacheAllocator", "ledger", None, PREFIX_PY),
    ("attr", "allocator", "CacheAllocator", "block_table", None, PREFIX_PY),
    ("attr", "allocator", "CacheAllocator", "pool", None, PREFIX_PY),
    ("attr", "allocator", "CacheAllocator", "index", None, PREFIX_PY),
    ("attr", "allocator", "BlockLedger", "hash_to_block", None, PREFIX_PY),
    ("attr", "allocator", "BlockLedger", "block_to_hash", None, PREFIX_PY),
    ("method", "allocator", "BlockLedger", "acquire", ("self", "block_id"), PREFIX_PY),
    ("method", "allocator", "BlockLedger", "release", ("self", "block_id", "no_cache"), PREFIX_PY),
    ("method", "allocator", "BlockLedger", "register_new_hash", ("self", "block_id", "block_hash"), PREFIX_PY),
    ("method", "pool", "CachePool", "free_blocks", ("self", "index", "block_ids"), PREFIX_PY),
    ("calls", "scheduler", "Scheduler", "_infer_request_tokens", "search_prefix_match", PREFIX_PY),
    ("calls", "api", "ContinuousBatchProcessor", "update_batch", "mark_complete_blocks", PREFIX_PY),
]
# fmt: on


def load_modules() -> dict:
    """The transformers modules the tables name (a moved module raises SteeringError)."""
    import transformers

    try:
        return {key: importlib.import_module(path) for key, path in MODULES.items()}
    except ImportError as exc:
        raise SteeringError(
            f"transformers {transformers.__version__}: the continuous-batching modules steerfast's "
            f"serving seam uses moved ({exc}); the seam was checked against transformers {CHECKED_RANGE}"
        ) from exc


def _has_attr(cls, name: str) -> bool:
    if hasattr(cls, name):
        return True
    for klass in inspect.getmro(cls):
        if name in getattr(klass, "__slots__", ()) or name in vars(klass).get("__annotations__", {}):
            return True  # a slot, a dataclass field, a TypedDict key
        if klass is object:
            continue
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if f"self.{name} =" in src or f"self.{name}:" in src:
            return True
    return False


def problems(table, modules: dict) -> list[str]:
    """What of `table` the given transformers modules lack, each naming the file that needs it."""
    found = []
    for kind, key, cls, name, detail, user in table:
        module = modules[key]
        if cls is not None and kind != "function":
            holder = getattr(module, cls, None)
            if holder is None:
                found.append(f"{module.__name__.rsplit('.', 1)[-1]}.{cls} is gone (used by {user})")
                continue
        msg = _check_one(kind, module, cls, name, detail)
        if msg is not None:
            found.append(f"{msg} (used by {user})")
    return found


def _check_one(kind, module, cls, name, detail) -> str | None:
    where = module.__name__.rsplit(".", 1)[-1]
    if kind == "source":
        return None if name in inspect.getsource(module) else f"{where} no longer holds {name}"
    holder = module if cls is None else getattr(module, cls)
    label = f"{where}.{name}" if cls is None else f"{cls}.{name}"
    if kind == "attr":
        return None if _has_attr(holder, name) else f"{label} is gone"
    fn = getattr(holder, name, None)
    if fn is None:
        return f"{label} is gone"
    if kind == "calls":
        return None if f".{detail}(" in inspect.getsource(fn) else f"{label} no longer calls {detail}"
    params = list(inspect.signature(fn).parameters)
    if kind == "accepts":
        missing = [p for p in detail if p not in params]
        return f"{label} takes no {', '.join(missing)}" if missing else None
    if detail is not None and params != list(detail):
        return f"{label}{tuple(params)} != {tuple(detail)}"
    return None


def version_problem(version: str) -> str | None:
    """Why `version` is refused (outside CHECKED_RANGE and no UNCHECKED_ENV), or None."""
    if Version(CHECKED_MIN) <= Version(version) <= Version(CHECKED_MAX):
        return None
    if os.environ.get(UNCHECKED_ENV) == "1":
        return None
    return (
        f"transformers {version} is outside the range steerfast's serving seam was checked "
        f"against ({CHECKED_RANGE}); install a transformers in that range, or set "
        f"{UNCHECKED_ENV}=1 to serve anyway (every private name it uses is still checked)"
    )


def installed_version() -> str:
    import transformers

    return transformers.__version__


def check(table, what: str, version: str | None = None, modules: dict | None = None) -> None:
    """Raise SteeringError naming the transformers version and every missing name (or the
    version itself, outside CHECKED_RANGE). `version` / `modules` default to the installed ones."""
    version = installed_version() if version is None else version
    refused = version_problem(version)
    if refused is not None:
        raise SteeringError(f"{what}: {refused}")
    missing = problems(table, load_modules() if modules is None else modules)
    if missing:
        raise SteeringError(
            f"{what}: transformers {version} lacks private names it relies on (checked against "
            f"transformers {CHECKED_RANGE}): " + "; ".join(missing)
        )
