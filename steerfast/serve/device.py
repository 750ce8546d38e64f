"""Where the served model runs (docs/serving.md, "GPU"): `--device`, `--dtype`, and the
stream every bank-table write goes on.

transformers' continuous batching computes each step on its own stream (the batch
processor's `inputs_and_outputs.compute_stream`; None on CPU). The bank's forward holds the
bank's lock only while the host enqueues kernels, so on CUDA a table written on the default
stream could land while the previous step's kernels still read it. Writing on the compute
stream orders every load after the kernels already enqueued and before the next step's.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch

from ..errors import SteeringError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}


def parse_dtype(name: str) -> torch.dtype:
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in DTYPES:
        raise SteeringError(f"--dtype must be one of {', '.join(DTYPES)} (or bf16, fp16, fp32), got {name!r}")
    return DTYPES[key]


def parse_device(name: str) -> torch.device:
    """A torch device that exists here; 'cuda' alone means the current CUDA device."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise SteeringError(
            f"--device {name!r} is not a torch device ({exc}); use cpu, cuda or cuda:N"
        ) from exc
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise SteeringError(f"--device {name!r}: only cpu and cuda[:N] are supported")
    if not torch.cuda.is_available():
        raise SteeringError(f"--device {name!r}: CUDA is not available in this torch ({torch.__version__})")
    count = torch.cuda.device_count()
    index = device.index if device.index is not None else torch.cuda.current_device()
    if not 0 <= index < count:
        raise SteeringError(f"--device {name!r}: this machine has {count} CUDA device(s) (0..{count - 1})")
    return torch.device("cuda", index)


def compute_stream(manager):
    """The stream the manager's steps run on (None on CPU, or before its processor exists)."""
    bp = getattr(manager, "batch_processor", None)
    io = getattr(bp, "inputs_and_outputs", None)
    return getattr(io, "compute_stream", None)


@contextmanager
def on_compute_stream(manager):
    """Run the block's device work on the manager's compute stream (a no-op without one)."""
    stream = compute_stream(manager)
    if stream is None:
        ctx = nullcontext()
    else:  # torch.cuda.Stream has a device; torch.cpu.Stream does not
        device = getattr(stream, "device", None)
        ctx = torch.get_device_module(device.type if device is not None else "cpu").stream(stream)
    with ctx:
        yield stream
