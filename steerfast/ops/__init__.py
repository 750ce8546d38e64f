"""The ops seam: every steered forward calls these; they dispatch to a backend.

Backends: "fused" (torch.ops.steerfast.*: C++ on CPU, Triton on CUDA, the reference on other
devices) and "reference" (steerfast.ops.reference, plain torch). `set_backend` switches for
comparison; "auto" (the default) picks fused when the compiled ops are available.

The backend is a module-level flag read at call time, so under torch.compile it is a guarded
constant: switching it recompiles, changing slot or strength tensor values never does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import library, reference
from .autograd import SteerAblate, SteerLinear, SteerRows, needs_grad

_ROWS = torch.ops.steerfast.steer_rows_.default
_LINEAR = torch.ops.steerfast.steer_linear.default
_ABLATE = torch.ops.steerfast.steer_ablate_.default

_REQUESTED = "auto"
_FUSED = False


def _fused_possible() -> bool:
    """Builds the C++ kernels if they were not tried yet."""
    return library.fused_available() or library.triton_available()


def set_backend(name: str) -> None:
    """ "fused" builds the C++ kernels now (refused if that fails); "auto" (the default, set at
    import) picks fused when a compiler is there, and they build on their first CPU call."""
    global _REQUESTED, _FUSED
    if name not in ("reference", "fused", "auto"):
        raise ValueError(f"unknown ops backend {name!r}; choose 'reference', 'fused' or 'auto'")
    if name == "fused" and not _fused_possible():
        raise RuntimeError(f"the fused ops are not available in this build: {library.fallback_reason()}")
    _REQUESTED = name
    _FUSED = name == "fused" or (name == "auto" and (library.cpp_possible() or library.triton_available()))


def get_backend() -> str:
    """The resolved backend: "fused" or "reference" (builds the C++ kernels if not tried)."""
    global _FUSED
    if _FUSED and _REQUESTED == "auto" and not _fused_possible():
        _FUSED = False  # the build failed: call the reference directly
    return "fused" if _FUSED else "reference"


def fused_selected() -> bool:
    """Whether the ops below call the compiled kernels now (read at call time, like the ops)."""
    return _FUSED


# the compiled kernels take these activation dtypes; anything else (e.g. an fp64 model used
# for exact comparisons) runs the reference, decided on the dtype alone (no tensor values)
FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _rows_kernel(y, slots, mask, delta, bias, coef) -> None:
    if y.dtype in FUSED_DTYPES:
        _ROWS(y, slots, mask, delta, bias, coef)
    else:
        reference.steer_rows_ref_(y, slots, mask, delta, bias, coef)


def _ablate_kernel(*args) -> None:
    if args[0].dtype in FUSED_DTYPES:
        _ABLATE(*args)
    else:
        reference.steer_ablate_ref_(*args)


def _linear_kernel(*args) -> Tensor:
    if args[0].dtype in FUSED_DTYPES:
        return _LINEAR(*args)
    return reference.steer_linear_ref(*args)


def bound_kernels(calls) -> tuple:
    """[(ablates?, the op's arguments after y)] as ((kernel, arguments), ...) for a hot loop
    that has already decided what the seam decides per call: the fused backend, a dtype in
    FUSED_DTYPES, no autograd (runtime/steered.py, decode lanes). Same kernels, same arguments."""
    kernels = [_ABLATE if ablates else _ROWS for ablates, _ in calls]
    # the overload's own callable (what OpOverload.__call__ forwards to: the same dispatcher
    # call, dispatch modes included), without that Python frame
    return tuple((getattr(k, "_op", k), args) for k, (_, args) in zip(kernels, calls))


# The compiled kernels have no derivative: with grad enabled and an input that requires grad,
# the fused backend runs them inside an autograd.Function with the exact backward
# (steerfast/ops/autograd.py). The reference backend is plain torch and differentiates itself.
def steer_rows_(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
) -> None:
    if not _FUSED:
        reference.steer_rows_ref_(y, slots, mask, delta, bias, coef)
    elif needs_grad(y, mask, delta, bias, coef):
        SteerRows.apply(_rows_kernel, y, slots, mask, delta, bias, coef)
    else:
        _rows_kernel(y, slots, mask, delta, bias, coef)


def steer_linear(
    x: Tensor,
    weight: Tensor,
    lin_bias: Tensor | None,
    slots: Tensor,
    in_mask: Tensor | None,
    in_delta: Tensor | None,
    out_mask: Tensor | None,
    out_delta: Tensor | None,
    out_bias: Tensor | None,
    out_coef: Tensor | None,
) -> Tensor:
    args = (x, weight, lin_bias, slots, in_mask, in_delta, out_mask, out_delta, out_bias, out_coef)
    if not _FUSED:
        return reference.steer_linear_ref(*args)
    if needs_grad(x, weight, lin_bias, in_mask, in_delta, out_mask, out_delta, out_bias, out_coef):
        return SteerLinear.apply(_linear_kernel, *args)
    return _linear_kernel(*args)


def steered_rows(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
) -> Tensor:
    """The compiled-graph realisation of steer_rows_: out of place, plain torch ops (gathers,
    mul, add, where) that Inductor fuses with the projection; whichever backend is set."""
    return reference.steer_rows_ref(y, slots, mask, delta, bias, coef)


def steer_ablate_(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
    direction: Tensor,
    alpha: Tensor,
) -> None:
    """steer_rows_'s scale and shift, then y[r] -= alpha[s] * (y[r] . direction[s]) * direction[s]
    on the selected rows, in place, in one kernel (see reference.steer_ablate_ref)."""
    args = (y, slots, mask, delta, bias, coef, direction, alpha)
    if not _FUSED:
        reference.steer_ablate_ref_(*args)
    elif needs_grad(y, mask, delta, bias, coef, direction, alpha):
        SteerAblate.apply(_ablate_kernel, *args)
    else:
        _ablate_kernel(*args)


def steered_ablate(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
    direction: Tensor,
    alpha: Tensor,
) -> Tensor:
    """The compiled-graph realisation of steer_ablate_: out of place, plain torch ops."""
    return reference.steer_ablate_ref(y, slots, mask, delta, bias, coef, direction, alpha)


set_backend("auto")
