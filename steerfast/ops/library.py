"""Registration of the ``steerfast::`` torch.library ops.

On import:
1. the C++ extension (csrc/) is compiled just in time with ninja, cached per torch version
   under ``$STEERFAST_CACHE/build/<torch>`` (default ``~/.cache/steerfast/build/<torch>``);
   it defines both schemas and their CPU kernels;
2. if that fails (no compiler, no ninja, build error, or ``STEERFAST_DISABLE_CPP=1``) the same
   schemas are defined from Python with the torch reference as the CPU kernel, and a warning
   names the fallback;
3. the torch reference is registered as the CompositeExplicitAutograd kernel, so devices
   without a dedicated kernel still get the exact math;
4. fake (meta) implementations are registered for torch.compile / FakeTensor tracing;
5. when CUDA is present and Triton imports, the Triton kernels (kernels/, packaged as
   ``steerfast.kernels``) become the CUDA kernels.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from . import reference

ROWS_SCHEMA = ("steer_rows_(Tensor(a!) y, Tensor slots, Tensor? mask, Tensor? delta, "
               "Tensor? bias, Tensor? coef) -> ()")
LINEAR_SCHEMA = ("steer_linear(Tensor x, Tensor weight, Tensor? lin_bias, Tensor slots, "
                 "Tensor? in_mask, Tensor? in_delta, Tensor? out_mask, Tensor? out_delta, "
                 "Tensor? out_bias, Tensor? out_coef) -> Tensor")
_SOURCES = ("steer_rows.cpp", "steer_linear.cpp", "bindings.cpp")
_REPO = Path(__file__).resolve().parents[2]

_cpp_loaded = False
_cpp_reason = ""
_triton_registered = False
_triton_reason = "CUDA is not available"
_libs: list = []  # keeps the Python Library objects (and their registrations) alive


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


def build_dir(src: Optional[Path] = None) -> Path:
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


def _load_cpp() -> None:
    global _cpp_loaded, _cpp_reason
    if os.environ.get("STEERFAST_DISABLE_CPP", "") not in ("", "0"):
        _cpp_reason = "disabled by STEERFAST_DISABLE_CPP"
        return
    try:
        from torch.utils.cpp_extension import load, verify_ninja_availability
        verify_ninja_availability()
        src = source_dir()
        bdir = build_dir(src)
        bdir.mkdir(parents=True, exist_ok=True)
        load(
            name="steerfast_C",
            sources=[str(src / f) for f in _SOURCES],
            # -ffp-contract=off: no fused multiply-add, so the CPU kernels round every product
            # and sum exactly as the torch reference does (bit-identical results).
            extra_cflags=_CFLAGS,
            is_python_module=False,
            build_directory=str(bdir),
            verbose=os.environ.get("STEERFAST_VERBOSE_BUILD", "") not in ("", "0"),
        )
        _cpp_loaded = True
    except Exception as exc:  # no compiler / ninja / headers: fall back, never fail the import
        first = (str(exc).strip().splitlines() or [""])[0]
        _cpp_reason = f"C++ build failed ({type(exc).__name__}: {first[:300]})"


def _rows_ref(y, slots, mask, delta, bias, coef) -> None:
    reference.steer_rows_ref_(y, slots, mask, delta, bias, coef)


def _define_from_python() -> None:
    lib = torch.library.Library("steerfast", "DEF")
    lib.define(ROWS_SCHEMA)
    lib.define(LINEAR_SCHEMA)
    lib.impl("steer_rows_", _rows_ref, "CPU")
    lib.impl("steer_linear", reference.steer_linear_ref, "CPU")
    _libs.append(lib)
    warnings.warn(
        f"steerfast: fused CPU kernels unavailable, using the torch reference ops instead: "
        f"{_cpp_reason}", RuntimeWarning, stacklevel=3)


def _register_default_and_fake() -> None:
    lib = torch.library.Library("steerfast", "IMPL")
    lib.impl("steer_rows_", _rows_ref, "CompositeExplicitAutograd")
    lib.impl("steer_linear", reference.steer_linear_ref, "CompositeExplicitAutograd")
    _libs.append(lib)

    @torch.library.register_fake("steerfast::steer_rows_", lib=lib)
    def _rows_fake(y, slots, mask, delta, bias, coef) -> None:
        return None

    @torch.library.register_fake("steerfast::steer_linear", lib=lib)
    def _linear_fake(x, weight, lin_bias, slots, in_mask, in_delta, out_mask, out_delta,
                     out_bias, out_coef) -> Tensor:
        torch._check(x.dim() == 2, lambda: "steer_linear: x must be 2-D")
        torch._check(weight.shape[1] == x.shape[1], lambda: "steer_linear: weight is (O, D)")
        return x.new_empty((x.shape[0], weight.shape[0]))


def kernels_dir() -> Path:
    """The directory of the Triton kernels package, found without importing it."""
    try:
        spec = importlib.util.find_spec("steerfast.kernels")
        if spec is not None and spec.submodule_search_locations:
            return Path(list(spec.submodule_search_locations)[0])
    except ImportError:
        pass
    return _REPO / "kernels"


def import_kernels():
    """The Triton kernels package: ``steerfast.kernels`` when installed, else <repo>/kernels."""
    try:
        return importlib.import_module("steerfast.kernels")
    except ImportError:
        pass
    if "steerfast.kernels" in sys.modules:
        return sys.modules["steerfast.kernels"]
    init = kernels_dir() / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "steerfast.kernels", init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise ImportError(f"steerfast.kernels not found (looked in {init.parent})")
    module = importlib.util.module_from_spec(spec)
    sys.modules["steerfast.kernels"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["steerfast.kernels"]
        raise
    return module


def _register_triton() -> None:
    global _triton_registered, _triton_reason
    if not torch.cuda.is_available():
        return
    try:
        kernels = import_kernels()
        lib = torch.library.Library("steerfast", "IMPL")
        lib.impl("steer_rows_", kernels.steer_rows_, "CUDA")
        lib.impl("steer_linear", kernels.steer_linear, "CUDA")
        _libs.append(lib)
        _triton_registered = True
        _triton_reason = ""
    except Exception as exc:  # triton missing or broken: CUDA falls back to the reference
        _triton_reason = f"Triton kernels unavailable ({type(exc).__name__}: {exc})"


def fused_available() -> bool:
    """True when the compiled C++ kernels are what runs on CPU."""
    return _cpp_loaded


def fallback_reason() -> str:
    """Why the C++ kernels are not in use ('' when they are)."""
    return _cpp_reason


def triton_available() -> bool:
    """True when the Triton kernels are registered as the CUDA implementation."""
    return _triton_registered


def triton_reason() -> str:
    return _triton_reason


def _init() -> None:
    _load_cpp()
    if not _cpp_loaded:
        _define_from_python()
    _register_default_and_fake()
    _register_triton()


_init()
