"""Registration: opcheck, torch.compile(fullgraph) tracing, backends, and the no-compiler
fallback."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from kern_oracle import linear_case, rows_case

import steerfast.ops as ops
from steerfast.ops import library

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kinds", ["mask", "bias", "both"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_opcheck_steer_rows(kinds, dtype):
    y, slots, mask, delta, bias, coef = rows_case(1, 5, 123, dtype, torch.int64, kinds)
    torch.library.opcheck(torch.ops.steerfast.steer_rows_.default, (y, slots, mask, delta, bias, coef))


@pytest.mark.parametrize("kinds", ["in+omask+obias", "obias", "none"])
def test_opcheck_steer_linear(kinds):
    args = linear_case(2, 3, 64, 24, torch.float32, torch.int32, kinds)
    torch.library.opcheck(torch.ops.steerfast.steer_linear.default, args)


def _steered_block(x, w, slots, mask, delta, bias, coef, w2, in_mask, in_delta):
    h = x @ w.T
    ops.steer_rows_(h, slots, mask, delta, bias, coef)
    return ops.steer_linear(h, w2, None, slots, in_mask, in_delta, None, None, bias, coef)


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_compile_fullgraph_no_recompile_on_value_change(backend):
    if backend == "fused" and not (library.fused_available() or library.triton_available()):
        pytest.skip("fused backend unavailable")
    import torch._dynamo
    from torch._dynamo.testing import CompileCounterWithBackend

    prev = ops.get_backend()
    ops.set_backend(backend)
    torch._dynamo.reset()
    try:
        counter = CompileCounterWithBackend("aot_eager")
        fn = torch.compile(_steered_block, backend=counter, fullgraph=True)
        g = torch.Generator().manual_seed(0)
        d, e, n = 32, 4, 5
        x, w, w2 = (
            torch.randn(n, d, generator=g),
            torch.randn(d, d, generator=g),
            torch.randn(d, d, generator=g),
        )
        mask = (torch.rand(e, d, generator=g) > 0.5).float()
        bias = torch.randn(e, d, generator=g)
        for step in range(3):
            slots = torch.randint(-1, e, (n,), generator=g)
            delta, coef = torch.randn(e, generator=g), torch.randn(e, generator=g)
            args = (x, w, slots, mask, delta, bias, coef, w2, mask, delta)
            torch.testing.assert_close(fn(*args), _steered_block(*args), rtol=0, atol=0)
        assert counter.frame_count == 1, "slot/strength value changes recompiled"
        assert counter.op_count >= 3
    finally:
        ops.set_backend(prev)
        torch._dynamo.reset()


def test_compile_inductor_matches_eager():
    # The production path: inductor calls the op as an extern kernel (in-place mutation of
    # an intermediate included).
    import torch._dynamo

    torch._dynamo.reset()
    fn = torch.compile(_steered_block, fullgraph=True)
    args = list(linear_case(4, 3, 16, 16, torch.float32, torch.int64, "in+obias"))
    x, w2, _, slots, in_mask, in_delta, _, _, bias, coef = args
    w = torch.eye(16) * 0.5
    call = (x, w, slots, in_mask, in_delta, bias, coef, w2, in_mask, in_delta)
    torch.testing.assert_close(fn(*call), _steered_block(*call), rtol=1e-6, atol=1e-6)
    torch._dynamo.reset()


def test_backend_switching():
    prev = ops.get_backend()
    try:
        ops.set_backend("reference")
        assert ops.get_backend() == "reference"
        ops.set_backend("auto")
        assert ops.get_backend() == ("fused" if library.fused_available() else "reference")
        with pytest.raises(ValueError):
            ops.set_backend("fast")
    finally:
        ops.set_backend(prev)


def test_fused_available_reports_reason():
    assert library.fused_available() == (library.fallback_reason() == "")


def test_cpp_build_is_cached():
    if not library.fused_available():
        pytest.skip("C++ kernels not built")
    assert (library.build_dir() / "steerfast_C.so").is_file()


def test_fallback_without_compiler_uses_reference():
    code = textwrap.dedent("""
        import warnings
        import torch
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from steerfast.ops import library, reference
            import steerfast.ops as ops
            assert not library.fused_available()      # the first use decides, and warns
        assert "STEERFAST_DISABLE_CPP" in library.fallback_reason()
        assert any("reference" in str(w.message) for w in caught), [str(w.message) for w in caught]
        assert ops.get_backend() == "reference"
        try:
            ops.set_backend("fused")
        except RuntimeError as exc:
            assert "not available" in str(exc)
        else:
            raise AssertionError("fused should be refused")
        y = torch.randn(4, 8); s = torch.tensor([0, -1, 1, 0])
        m = torch.ones(2, 8); d = torch.tensor([1.0, 2.0])
        a, b = y.clone(), y.clone()
        torch.ops.steerfast.steer_rows_(a, s, m, d, None, None)
        reference.steer_rows_ref_(b, s, m, d, None, None)
        assert torch.equal(a, b)
        out = torch.ops.steerfast.steer_linear(y, torch.eye(8), None, s, m, d, None, None, None, None)
        assert torch.equal(out, b)
        print("OK")
    """)
    env = dict(
        os.environ,
        STEERFAST_DISABLE_CPP="1",
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]
