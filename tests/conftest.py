import os

import pytest
import torch

# Triton runs here only under its interpreter (no GPU): set it before anything imports triton,
# whichever test file happens to import it first
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def default_model():
    from steerfast.models import load

    model, tok = load()
    tok.padding_side = "left"
    return model, tok


def _generation_loops():
    import threading

    return [t for t in threading.enumerate() if t.is_alive() and "_run_generation_loop" in t.name]


def pytest_sessionfinish(session, exitstatus):
    """A continuous-batching manager left running has a non-daemon thread that keeps pytest from
    exiting (a hung CI, not a red one): stop every such manager and fail the session, naming them."""
    leaked = _generation_loops()
    for t in leaked:
        manager = getattr(getattr(t, "_target", None), "__self__", None)
        if manager is not None and hasattr(manager, "stop"):
            manager.stop(block=True, timeout=10)
    if leaked:
        print(f"\nLEAKED continuous-batching managers (a test did not stop them): {[t.name for t in leaked]}")
        session.exitstatus = 1
