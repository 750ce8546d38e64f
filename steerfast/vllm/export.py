"""vLLM loads an HF-format directory: the packaged models (GGUF, dequantised by
steerfast.models.load) are exported once with save_pretrained and cached."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from ..models import DEFAULT_MODEL, cache_dir, load

DONE = ".steerfast-exported"


def export_dir(name: str = DEFAULT_MODEL, dtype=torch.float32) -> Path:
    """An HF-format copy of `name` (a packaged model name, a path or a hub id steerfast can
    load), written once under the steerfast cache; returns its directory."""
    if Path(name).is_dir() and (Path(name) / "config.json").is_file():
        return Path(name)
    import transformers

    tag = f"{str(dtype).removeprefix('torch.')}-transformers{transformers.__version__}"
    out = cache_dir() / "hf-export" / f"{name.replace('/', '--')}-{tag}"
    if (out / DONE).is_file():
        return out
    tmp = out.with_name(out.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model, tok = load(name, dtype=dtype)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / DONE).write_text(name + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out
