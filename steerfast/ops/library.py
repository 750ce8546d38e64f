"""Registration of the ``steerfast::`` torch.library ops.

On import (cheap: no compiler runs):
1. both schemas are defined from Python (the C++ library only registers kernels, so a
   re-import or a late build never defines the namespace twice);
2. the torch reference is the CompositeExplicitAutograd kernel (devices without a dedicated
   kernel get the exact math), with fake (meta) implementations for torch.compile;
3. the CPU kernel is a small loader: the first CPU call of a steerfast op builds the C++
   extension (csrc/, ninja, one line on stderr while it builds), cached per source and torch
   version under ``$STEERFAST_CACHE/build/<torch>/<key>``, removes itself and re-dispatches
   to the compiled kernel. If the build fails (no compiler, no ninja, ``STEERFAST_DISABLE_CPP=1``)
   the reference becomes the CPU kernel and a warning names the reason;
4. when CUDA is present and Triton imports, the Triton kernels (kernels/, imported as
   ``steerfast.kernels`` by kernel_modules.py) become the CUDA kernels.

The build is guarded by an flock (released by the kernel if the builder dies, so a killed
build never blocks later ones; torch's own lock file left by it is removed), and the cached
library is loaded only if its SHA-256 matches the one recorded after the last good load
(a truncated file would otherwise kill the process with SIGBUS): else it is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

import torch
from torch import Tensor

from . import kernel_modules, reference

ROWS_SCHEMA = (
    "steer_rows_(Tensor(a!) y, Tensor slots, Tensor? mask, Tensor? delta, Tensor? bias, Tensor? coef) -> ()"
)
LINEAR_SCHEMA = (
    "steer_linear(Tensor x, Tensor weight, Tensor? lin_bias, Tensor slots, "
    "Tensor? in_mask, Tensor? in_delta, Tensor? out_mask, Tensor? out_delta, "
    "Tensor? out_bias, Tensor? out_coef) -> Tensor"
)
ABLATE_SCHEMA = (
    "steer_ablate_(Tensor(a!) y, Tensor slots, Tensor? mask, Tensor? delta, Tensor? bias, "
    "Tensor? coef, Tensor direction, Tensor alpha) -> ()"
)
_SOURCES = ("steer_rows.cpp", "steer_linear.cpp", "steer_ablate.cpp", "bindings.cpp")
_REPO = Path(__file__).resolve().parents[2]

_cpp_loaded = False
_cpp_tried = False
_cpp_reason = "not built yet: the C++ kernels build on the first CPU call of a steerfast op"
_cpp_guard = threading.Lock()
_triton_registered = False
_triton_reason = "CUDA is not available"
_libs: list = []  # keeps the Python Library objects (and their registrations) alive
_loader_lib = None  # the Library holding the build-on-first-use CPU kernels


def source_dir() -> Path:
    """Where the C++ sources are: the installed package data, else the repo checkout."""
    try:
        from importlib.resources import files

        candidate = files("steerfast.csrc") / "bindings.cpp"
        if candidate.is_file():
            return Path(str(candidate)).parent
    except (ImportError, TypeError, ValueError):
        pass
    return _REPO / "csrc"


_CFLAGS = ["-O3", "-ffp-contract=off"]


def build_dir(src: Path | None = None) -> Path:
    """``<cache>/build/<torch version>/<key>``: the key hashes the source location and
    contents, the flags and the torch install, because ninja's command lines embed absolute
    paths: two checkouts (or two venvs) sharing one directory would rebuild each other's
    objects on every import."""
    src = source_dir() if src is None else src
    h = hashlib.sha256()
    for part in (str(src.resolve()), torch.__file__, " ".join(_CFLAGS)):
        h.update(part.encode() + b"\0")
    for name in _SOURCES + ("steerfast_ops.h", "convert.h"):
        path = src / name
        h.update(path.read_bytes() if path.is_file() else b"missing")
    root = os.environ.get("STEERFAST_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "steerfast"
    return base / "build" / torch.__version__.replace("+", "_") / h.hexdigest()[:16]


_SO = "steerfast_C.so"
_SO_SUM = "steerfast_C.so.sha256"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_library_ok(bdir: Path) -> bool:
    """True when the built library is there and matches the checksum of its last good load."""
    so, record = bdir / _SO, bdir / _SO_SUM
    try:
        return so.is_file() and record.read_text().strip() == _sha256(so)
    except OSError:
        return False


class _BuildLock:
    """An exclusive flock on ``<build dir>/.steerfast.lock`` for the build and the load."""

    def __init__(self, bdir: Path):
        self.path = bdir / ".steerfast.lock"
        self.fh = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # no flock (Windows): torch's own lock file only
            return self
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print(
                f"steerfast: waiting for another process building the C++ kernels in {self.path.parent}",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fh is not None:
            self.fh.close()  # closing releases the flock


def _prepare_build_dir(bdir: Path) -> None:
    """Called holding the flock: no other steerfast process is building here."""
    stale = bdir / "lock"  # torch's FileBaton: left behind by a killed build
    if stale.exists():
        print(
            f"steerfast: removing a stale build lock left by an interrupted build ({stale})",
            file=sys.stderr,
            flush=True,
        )
        stale.unlink()
    if cached_library_ok(bdir):
        return
    if (bdir / _SO).exists():
        print(
            f"steerfast: the cached C++ library in {bdir} does not match its checksum "
            f"(truncated or corrupt); rebuilding",
            file=sys.stderr,
            flush=True,
        )
    for child in bdir.iterdir():  # rebuild from scratch: objects may be damaged too
        if child.name != ".steerfast.lock":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    print(
        f"steerfast: building the C++ CPU kernels (once per source and torch version, "
        f"about a minute) in {bdir}",
        file=sys.stderr,
        flush=True,
    )


def _load_cpp() -> None:
    global _cpp_loaded, _cpp_reason
    if os.environ.get("STEERFAST_DISABLE_CPP", "") not in ("", "0"):
        _cpp_reason = "disabled by STEERFAST_DISABLE_CPP"
        return
    try:
        # build-tool notices must not abort the build when warnings are errors (python -W error)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.utils.cpp_extension import load, verify_ninja_availability

            verify_ninja_availability()
            src = source_dir()
            bdir = build_dir(src)
            bdir.mkdir(parents=True, exist_ok=True)
            with _BuildLock(bdir):
                _prepare_build_dir(bdir)
                load(
                    name="steerfast_C",
                    sources=[str(src / f) for f in _SOURCES],
                    # -ffp-contract=off: no fused multiply-add, so the CPU kernels round every
                    # product and sum exactly as the torch reference does (bit-identical results).
                    extra_cflags=_CFLAGS,
                    is_python_module=False,
                    build_directory=str(bdir),
                    verbose=os.environ.get("STEERFAST_VERBOSE_BUILD", "") not in ("", "0"),
                )
                (bdir / _SO_SUM).write_text(_sha256(bdir / _SO) + "\n")
        _cpp_loaded = True
        _cpp_reason = ""
    except Exception as exc:  # no compiler / ninja / headers: fall back, never fail the caller
        first = (str(exc).strip().splitlines() or [""])[0]
        _cpp_reason = f"C++ build failed ({type(exc).__name__}: {first[:300]})"


def _rows_ref(y, slots, mask, delta, bias, coef) -> None:
    reference.steer_rows_ref_(y, slots, mask, delta, bias, coef)


def _ablate_ref(y, slots, mask, delta, bias, coef, direction, alpha) -> None:
    reference.steer_ablate_ref_(y, slots, mask, delta, bias, coef, direction, alpha)


def _warn(message: str) -> None:
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=4)
    except Warning:  # warnings are errors: say it without failing the call
        print(message, file=sys.stderr, flush=True)


def ensure_cpp() -> bool:
    """Build / load the C++ kernels once (first call); True when they are the CPU kernels."""
    global _cpp_tried, _loader_lib
    if _cpp_tried:
        return _cpp_loaded
    with _cpp_guard:
        if _cpp_tried:
            return _cpp_loaded
        if _loader_lib is not None:  # the loader kernels step aside for the real ones
            _loader_lib._destroy()
            _libs.remove(_loader_lib)
            _loader_lib = None
        _load_cpp()
        if not _cpp_loaded:
            lib = torch.library.Library("steerfast", "IMPL")
            lib.impl("steer_rows_", _rows_ref, "CPU")
            lib.impl("steer_linear", reference.steer_linear_ref, "CPU")
            lib.impl("steer_ablate_", _ablate_ref, "CPU")
            _libs.append(lib)
            _warn(
                f"steerfast: fused CPU kernels unavailable, using the torch reference ops "
                f"instead: {_cpp_reason}"
            )
        _cpp_tried = True
    return _cpp_loaded


def _rows_first_call(y, slots, mask, delta, bias, coef) -> None:
    ensure_cpp()
    torch.ops.steerfast.steer_rows_.default(y, slots, mask, delta, bias, coef)


def _ablate_first_call(*args) -> None:
    ensure_cpp()
    torch.ops.steerfast.steer_ablate_.default(*args)


def _linear_first_call(*args) -> Tensor:
    ensure_cpp()
    return torch.ops.steerfast.steer_linear.default(*args)


def _defined(name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f"steerfast::{name}", "")
        return True
    except RuntimeError:
        return False


def _has_kernel(name: str, key: str) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"steerfast::{name}", key)


def _has_fake(name: str) -> bool:
    from torch._library.simple_registry import singleton

    return singleton.find(f"steerfast::{name}").fake_impl.kernel is not None


def _register() -> None:
    """Register what is not registered yet: a re-import in the same process (after a failed
    import, or a test that purges sys.modules) finds the earlier registrations in place."""
    global _loader_lib
    if not _defined("steer_rows_"):
        lib = torch.library.Library("steerfast", "DEF")
        lib.define(ROWS_SCHEMA)
        lib.define(LINEAR_SCHEMA)
        _libs.append(lib)
    if not _defined("steer_ablate_"):  # a fragment: merges cleanly with other new schemas
        lib = torch.library.Library("steerfast", "FRAGMENT")
        lib.define(ABLATE_SCHEMA)
        _libs.append(lib)
    lib = torch.library.Library("steerfast", "IMPL")
    _libs.append(lib)
    if not _has_kernel("steer_rows_", "CompositeExplicitAutograd"):
        lib.impl("steer_rows_", _rows_ref, "CompositeExplicitAutograd")
        lib.impl("steer_linear", reference.steer_linear_ref, "CompositeExplicitAutograd")
    if not _has_kernel("steer_ablate_", "CompositeExplicitAutograd"):
        lib.impl("steer_ablate_", _ablate_ref, "CompositeExplicitAutograd")
    if not _has_kernel("steer_rows_", "CPU"):
        _loader_lib = torch.library.Library("steerfast", "IMPL")
        _loader_lib.impl("steer_rows_", _rows_first_call, "CPU")
        _loader_lib.impl("steer_linear", _linear_first_call, "CPU")
        _loader_lib.impl("steer_ablate_", _ablate_first_call, "CPU")
        _libs.append(_loader_lib)
    if not _has_fake("steer_rows_"):

        @torch.library.register_fake("steerfast::steer_rows_", lib=lib)
        def _rows_fake(y, slots, mask, delta, bias, coef) -> None:
            return None

        @torch.library.register_fake("steerfast::steer_linear", lib=lib)
        def _linear_fake(
            x, weight, lin_bias, slots, in_mask, in_delta, out_mask, out_delta, out_bias, out_coef
        ) -> Tensor:
            torch._check(x.dim() == 2, lambda: "steer_linear: x must be 2-D")
            torch._check(weight.shape[1] == x.shape[1], lambda: "steer_linear: weight is (O, D)")
            return x.new_empty((x.shape[0], weight.shape[0]))

    if not _has_fake("steer_ablate_"):

        @torch.library.register_fake("steerfast::steer_ablate_", lib=lib)
        def _ablate_fake(y, slots, mask, delta, bias, coef, direction, alpha) -> None:
            return None


def _register_triton() -> None:
    global _triton_registered, _triton_reason
    if not torch.cuda.is_available():
        return
    try:
        kernels = kernel_modules.load()
        lib = torch.library.Library("steerfast", "IMPL")
        lib.impl("steer_rows_", kernels.steer_rows_, "CUDA")
        lib.impl("steer_linear", kernels.steer_linear, "CUDA")
        lib.impl("steer_ablate_", kernels.steer_ablate_, "CUDA")
        _libs.append(lib)
        _triton_registered = True
        _triton_reason = ""
    except Exception as exc:  # triton missing or broken: CUDA falls back to the reference
        _triton_reason = f"Triton kernels unavailable ({type(exc).__name__}: {exc})"


def fused_available() -> bool:
    """True when the compiled C++ kernels are what runs on CPU (builds them on first call)."""
    return ensure_cpp()


def fallback_reason() -> str:
    """Why the C++ kernels are not in use ('' when they are; builds them on first call)."""
    ensure_cpp()
    return _cpp_reason


def cpp_possible() -> bool:
    """Without building: could the C++ kernels be in use (not disabled, a compiler and ninja
    found, or a verified cached build)?"""
    if _cpp_tried:
        return _cpp_loaded
    if os.environ.get("STEERFAST_DISABLE_CPP", "") not in ("", "0"):
        return False
    compiler = os.environ.get("CXX") or "c++"
    return bool(shutil.which(compiler) or shutil.which("g++")) and bool(
        shutil.which("ninja") or _ninja_module()
    )


def _ninja_module() -> bool:
    return importlib.util.find_spec("ninja") is not None


def triton_available() -> bool:
    """True when the Triton kernels are registered as the CUDA implementation."""
    return _triton_registered


def triton_reason() -> str:
    return _triton_reason


def _init() -> None:
    _register()
    _register_triton()


_init()
