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
