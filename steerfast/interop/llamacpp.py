"""The other side: llama.cpp (llama-cpp-python, optional extra `llamacpp`) applying a control
vector to a GGUF model, and the cross-check of its logit shift against steerfast's.

The control-vector file is read here the way llama.cpp's common_control_vector_load reads it
(independently of steerfast's importer): direction.N (N >= 1) times the scale, summed into an
n_embd x (n_layer - 1) buffer that starts at block 1, then handed to llama_set_adapter_cvec.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PlanError


def cvec_buffer(path: str | Path, scale: float, n_embd: int) -> np.ndarray:
    """common_control_vector_load's buffer: layer 1 at offset 0, duplicates summed."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    buf = np.zeros(0, dtype=np.float32)
    for t in reader.tensors:
        prefix, _, idx = t.name.partition(".")
        if prefix != "direction" or not idx.isdigit() or int(idx) == 0:
            raise PlanError(f"llama.cpp rejects tensor {t.name!r} in a control vector")
        n, v = int(idx), np.asarray(t.data, dtype=np.float32)
        if v.shape != (n_embd,):
            raise PlanError(f"{t.name} has shape {v.shape}, the model's n_embd is {n_embd}")
        if buf.size < n * n_embd:
            buf = np.concatenate([buf, np.zeros(n * n_embd - buf.size, dtype=np.float32)])
        buf[(n - 1) * n_embd : n * n_embd] += v * np.float32(scale)
    return buf


class LlamaCpp:
    """A GGUF model in llama.cpp with a settable control vector; last-token logits."""

    def __init__(self, model_path: str | Path, n_ctx: int = 256, n_threads: int = 2):
        import llama_cpp

        self.llm = llama_cpp.Llama(
            model_path=str(model_path),
            logits_all=True,
            n_ctx=n_ctx,
            n_batch=n_ctx,
            n_threads=n_threads,
            verbose=False,
        )
        self.n_embd = self.llm.n_embd()
        self.n_layer = int(llama_cpp.llama_model_n_layer(self.llm._model.model))
        # renamed across versions: llama_set_adapter_cvec (0.3.36), llama_apply_adapter_cvec before
        self._set = getattr(llama_cpp, "llama_set_adapter_cvec", None) or llama_cpp.llama_apply_adapter_cvec

    def set_control_vector(self, path: str | Path | None, scale: float = 1.0) -> None:
        """Apply a control-vector file on blocks 1..n_layer-1 (as llama-cli does); None clears it."""
        ctx = self.llm._ctx.ctx
        if path is None:
            rc = self._set(ctx, None, 0, self.n_embd, -1, -1)
        else:
            buf = cvec_buffer(path, scale, self.n_embd)
            # llama_set_adapter_cvec only writes the blocks the buffer covers: a shorter vector
            # would leave a previous one's higher blocks active on this context. Pad with zeros
            # (what a fresh context, as llama-cli uses, holds).
            full = (self.n_layer - 1) * self.n_embd
            if buf.size < full:
                buf = np.concatenate([buf, np.zeros(full - buf.size, dtype=np.float32)])
            arr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            rc = self._set(ctx, arr, buf.size, self.n_embd, 1, self.n_layer - 1)
        if rc != 0:
            raise PlanError(f"llama_set_adapter_cvec failed with {rc}")

    def last_logits(self, ids: Sequence[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(list(ids))
        return np.array(self.llm.scores[len(ids) - 1], dtype=np.float64)


def dequantised_copy(src: str | Path, dst: str | Path) -> Path:
    """An F32 GGUF of a quantised one (same metadata): llama.cpp then runs the exact weights
    steerfast's fp32 model holds, so what is left between them is arithmetic order."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(dst), reader.get_field("general.architecture").contents())
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.alignment"):
            continue
        array = f.types[0] == gguf.GGUFValueType.ARRAY
        writer.add_key_value(key, f.contents(), f.types[0], sub_type=f.types[-1] if array else None)
    for t in reader.tensors:
        writer.add_tensor(t.name, gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(dst)


@dataclass
class Agreement:
    prompt: str
    cosine: float  # cos(llama.cpp shift, steerfast shift)
    rel_error: float  # ‖shift_llama − shift_steerfast‖ / ‖shift_steerfast‖
    norm_llamacpp: float
    norm_steerfast: float
    noise_floor: float  # ‖unsteered llama.cpp − unsteered steerfast‖: the engines' own gap


def compare_shifts(
    cpp: LlamaCpp, model, tok, plan, gguf_path: str | Path, scale: float, prompts: Sequence[str]
) -> list[Agreement]:
    """Per prompt: llama.cpp's last-token logit shift (file at `scale`) vs steerfast's (plan)."""
    import torch

    from .. import patch

    out = []
    for prompt in prompts:
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        cpp.set_control_vector(None)
        base_c = cpp.last_logits(ids)
        cpp.set_control_vector(gguf_path, scale)
        shift_c = cpp.last_logits(ids) - base_c
        cpp.set_control_vector(None)
        x = torch.tensor([ids])
        with torch.no_grad():
            base_s = model(input_ids=x).logits[0, -1].double()
            with patch(model, plan):
                shift_s = (model(input_ids=x).logits[0, -1].double() - base_s).numpy()
        ns, nc = float(np.linalg.norm(shift_s)), float(np.linalg.norm(shift_c))
        out.append(
            Agreement(
                prompt,
                float(shift_c @ shift_s / (nc * ns)),
                float(np.linalg.norm(shift_c - shift_s) / ns),
                nc,
                ns,
                float(np.linalg.norm(base_c - base_s.numpy())),
            )
        )
    return out


__all__ = ["LlamaCpp", "cvec_buffer", "compare_shifts", "dequantised_copy", "Agreement"]
