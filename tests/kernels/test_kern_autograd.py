"""Gradients through the steering ops: exact on both backends, for every differentiable input.

fp64 gradcheck checks the backward formula (the fused backend runs the reference forward for
fp64, which the kernels do not take, inside the same autograd.Function). The fp32 checks run
the compiled kernels and compare their gradients with the reference backend's (plain torch
autograd), for few rows (the fused linear) and many.
"""

import pytest
import torch

from steerfast import ops

BACKENDS = ["fused", "reference"]


@pytest.fixture
def backend(request):
    before = ops.get_backend()
    ops.set_backend(request.param)
    yield request.param
    ops.set_backend(before)


def _tables(E, D, dtype, g, scale=True, add=True):
    mask = (
        (torch.rand(E, D, generator=g) > 0.4).to(dtype) + 0.25 * torch.rand(E, D, generator=g, dtype=dtype)
        if scale
        else None
    )
    delta = torch.randn(E, generator=g, dtype=dtype) if scale else None
    bias = torch.randn(E, D, generator=g, dtype=dtype) if add else None
    coef = torch.randn(E, generator=g, dtype=dtype) if add else None
    return mask, delta, bias, coef


def _slots(N, E, g):
    s = torch.randint(-1, E, (N,), generator=g)
    s[0], s[-1] = -1, E - 1
    return s


def _rows_fn(slots):
    def f(y, mask, delta, bias, coef):
        out = y * 1.0  # the op is in place: steer a non-leaf copy
        ops.steer_rows_(out, slots, mask, delta, bias, coef)
        return out

    return f


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("scale,add", [(True, True), (True, False), (False, True)])
def test_gradcheck_steer_rows_fp64(backend, scale, add):
    g = torch.Generator().manual_seed(1)
    N, D, E = 7, 5, 3
    y = torch.randn(N, D, generator=g, dtype=torch.float64)
    args = [y, *_tables(E, D, torch.float64, g, scale, add)]
    args = [a.requires_grad_() if a is not None else None for a in args]
    assert torch.autograd.gradcheck(_rows_fn(_slots(N, E, g)), args)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("N", [3, 12])
@pytest.mark.parametrize(
    "in_scale,out_scale,out_add",
    [(True, True, True), (True, False, False), (False, True, False), (False, False, True)],
)
def test_gradcheck_steer_linear_fp64(backend, N, in_scale, out_scale, out_add):
    g = torch.Generator().manual_seed(2)
    D, O, E = 6, 4, 3
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    w = torch.randn(O, D, generator=g, dtype=torch.float64)
    b = torch.randn(O, generator=g, dtype=torch.float64)
    im, idl, _, _ = _tables(E, D, torch.float64, g, in_scale, False)
    om, odl, ob, oc = _tables(E, O, torch.float64, g, out_scale, out_add)
    slots = _slots(N, E, g)
    args = [x, w, b, im, idl, om, odl, ob, oc]
    args = [a.requires_grad_() if a is not None else None for a in args]

    def f(x, w, b, im, idl, om, odl, ob, oc):
        return ops.steer_linear(x, w, b, slots, im, idl, om, odl, ob, oc)

    assert torch.autograd.gradcheck(f, args)


def _grads(fn, inputs):
    inputs = [t.detach().clone().requires_grad_() if t is not None else None for t in inputs]
    out = fn(*inputs)
    weight = torch.linspace(-1, 1, out.numel()).view_as(out)
    (out * weight).sum().backward()
    return out.detach(), [t.grad if t is not None else None for t in inputs]


def _compare(fn, inputs):
    """fused-backend gradients (compiled kernels) vs reference-backend gradients (torch)."""
    ops.set_backend("fused")
    try:
        out_f, grads_f = _grads(fn, inputs)
    finally:
        ops.set_backend("auto")
    ops.set_backend("reference")
    try:
        out_r, grads_r = _grads(fn, inputs)
    finally:
        ops.set_backend("auto")
    torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-5)
    for i, (a, b) in enumerate(zip(grads_f, grads_r)):
        if b is None:
            assert a is None, f"input {i}"
            continue
        assert a is not None, f"input {i}: the fused backend cut the graph"
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"input {i}: {m}")


# Why skip: these cases test the compiled C++ kernels; without a C++ compiler the ops run the
# torch reference (tested everywhere else). `make test` builds the kernels, so CI runs them.
needs_fused = pytest.mark.skipif(
    not ops.library.fused_available(), reason=f"C++ kernels not built: {ops.library.fallback_reason()}"
)


@needs_fused
@pytest.mark.parametrize("N", [4, 40])
def test_fused_rows_gradients_match_reference_fp32(N):
    g = torch.Generator().manual_seed(3)
    D, E = 16, 4
    inputs = [torch.randn(N, D, generator=g), *_tables(E, D, torch.float32, g)]
    _compare(_rows_fn(_slots(N, E, g)), inputs)


@needs_fused
@pytest.mark.parametrize("N", [4, 8, 9, 40])
def test_fused_linear_gradients_match_reference_fp32(N):
    g = torch.Generator().manual_seed(4)
    D, O, E = 16, 12, 4
    slots = _slots(N, E, g)
    inputs = [
        torch.randn(N, D, generator=g),
        torch.randn(O, D, generator=g),
        torch.randn(O, generator=g),
        *_tables(E, D, torch.float32, g, True, False)[:2],
        *_tables(E, O, torch.float32, g),
    ]

    def f(x, w, b, im, idl, om, odl, ob, oc):
        return ops.steer_linear(x, w, b, slots, im, idl, om, odl, ob, oc)

    _compare(f, inputs)


@needs_fused
def test_fused_rows_on_a_view_of_a_graph_tensor():
    """The runtime steers `y.view(-1, D)` of an embedding output in place."""
    g = torch.Generator().manual_seed(5)
    B, T, D, E = 2, 3, 8, 2
    slots = _slots(B * T, E, g)
    tables = _tables(E, D, torch.float32, g)

    def f(w, mask, delta, bias, coef):
        y = (w * 2.0).view(B, T, D)
        ops.steer_rows_(y.view(-1, D), slots, mask, delta, bias, coef)
        return y

    _compare(f, [torch.randn(B * T, D, generator=g), *tables])
