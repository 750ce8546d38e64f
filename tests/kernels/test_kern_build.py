"""The C++ kernels must build wherever a compiler is present: the skipif guards in the kernel
tests exist for machines without one, never to hide a broken build."""

import shutil

from steerfast.ops import get_backend, library


def test_cpp_kernels_built_when_a_compiler_exists():
    if shutil.which("c++") or shutil.which("g++"):
        assert library.fused_available(), library.fallback_reason()
        assert get_backend() == "fused"
    else:
        assert not library.fused_available()
        assert get_backend() == "reference"
