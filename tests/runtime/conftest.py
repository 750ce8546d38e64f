import pytest

from steerfast import ops
from steerfast.ops import library


@pytest.fixture
def fused_backend():
    """The fused ops for the test (they must be built here), the caller's backend after it."""
    assert library.fused_available(), library.fallback_reason()
    before = ops.get_backend()
    ops.set_backend("fused")
    yield
    ops.set_backend(before)
