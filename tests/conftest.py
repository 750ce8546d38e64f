import os

import pytest
import torch

# Triton runs here only under its interpreter (no GPU): set it before anything imports triton,
# whichever test file happens to import it first
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

ARCHS = ["llama", "mistral", "qwen2", "qwen3"]


def left_pad(rows, pad_id=0):
    """(ids, mask, position_ids) for a list of token-id lists, left padded."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.as_tensor(r)
        mask[i, width - len(r) :] = 1
    return ids, mask, (mask.cumsum(1) - 1).clamp(min=0)


@pytest.fixture(scope="session")
def default_model():
    from steerfast.models import load

    model, tok = load()
    tok.padding_side = "left"
    return model, tok
