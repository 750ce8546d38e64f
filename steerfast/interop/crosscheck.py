"""llama.cpp vs steerfast on the default model: `python -m steerfast.interop.crosscheck`.

1. steerfast -> llama.cpp: a CAA plan (positions all) exported to GGUF; llama.cpp applies it
   at scale = strength. Control: the same vector one block later in steerfast.
2. llama.cpp -> steerfast: a file written as llama.cpp's cvector-generator writes them
   (direction.{il+1} = mean difference read at block il's output, every block, int32 count),
   imported with import_gguf and applied by both at the same scale.
Per prompt: cosine and relative error of the last-token logit shifts (steered − unsteered).
Run twice: on the model's own Q4_1 GGUF (llama.cpp quantises activations to 8 bits for it,
steerfast runs the fp32 dequantisation: the engines differ by a noise floor even unsteered),
and on an F32 copy of that GGUF (same weights on both sides: only the mapping is tested).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

PROMPTS = (
    "The weather today is",
    "I think the new restaurant in town is",
    "My neighbour told me that",
    "Write one sentence about your weekend:",
    "The report on the project says",
)
DEFAULTS = dict(pairs=16, layer=10, coeff=4.0, gen_scale=0.25)


def write_llamacpp_style(path, directions: dict[int, np.ndarray], hint: str = "llama") -> Path:
    """A control vector as llama.cpp's cvector-generator writes it (no steerfast keys)."""
    import gguf

    w = gguf.GGUFWriter(str(path), "controlvector")
    w.add_string("controlvector.model_hint", hint)
    w.add_int32("controlvector.layer_count", len(directions))
    for n in sorted(directions):
        w.add_tensor(f"direction.{n}", np.asarray(directions[n], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)


def prepare(
    model,
    tok,
    workdir,
    pairs=DEFAULTS["pairs"],
    layer=DEFAULTS["layer"],
    coeff=DEFAULTS["coeff"],
    gen_scale=DEFAULTS["gen_scale"],
) -> dict:
    """The vectors of both directions, as plans and as files in `workdir`."""
    from ..data import sentiment_pairs
    from ..plan import Intervention, SteeringPlan
    from ..recipes import caa
    from ..recipes.sadi import mean_differences
    from .controlvector import export_gguf, import_gguf

    workdir = Path(workdir)
    data = sentiment_pairs()[:pairs]
    plan = caa(model, tok, data, layer=layer, coeff=coeff, positions="all", progress=False)
    export_gguf(plan, workdir / "caa.gguf")
    (iv,) = plan.interventions
    off = SteeringPlan([Intervention(iv.layer + 1, iv.site, "add", iv.tensor, "all", coeff)], "off-by-one")
    residual = mean_differences(model, tok, data, progress=False).residual.numpy()  # (L, D) entering layer l
    # llama.cpp's generator: diff read at block il's output (= stream entering il+1) -> direction.{il+1}
    dirs = {il + 1: residual[il + 1] for il in range(residual.shape[0] - 1)}
    write_llamacpp_style(workdir / "generator.gguf", dirs)
    imported = import_gguf(workdir / "generator.gguf", scale=gen_scale, model=model)
    settings = dict(
        pairs=pairs,
        layer=layer,
        coeff=coeff,
        gen_scale=gen_scale,
        caa_site=f"{iv.site} of layer {iv.layer} (direction.{iv.layer})",
    )
    # case: (steerfast plan, file llama.cpp applies, scale)
    cases = {
        "exported": (plan, workdir / "caa.gguf", coeff),
        "generator": (imported, workdir / "generator.gguf", gen_scale),
        "off_by_one": (off, workdir / "caa.gguf", coeff),
    }
    return {"settings": settings, "cases": cases}


def run(model, tok, cpp, prepared: dict, prompts=PROMPTS, cases=None) -> dict:
    """Per case (default: all) and prompt, llama.cpp's shift vs steerfast's (Agreement fields)."""
    from .llamacpp import compare_shifts

    out = {"settings": prepared["settings"]}
    for case, (plan, path, scale) in prepared["cases"].items():
        if cases is not None and case not in cases:
            continue
        out[case] = [a.__dict__ for a in compare_shifts(cpp, model, tok, plan, path, scale, prompts)]
    return out


def table(results: dict[str, dict]) -> str:
    rows = [
        "| weights | case | prompt | cosine | rel. error | ‖shift‖ llama.cpp | ‖shift‖ steerfast | noise floor |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for weights, result in results.items():
        for case in ("exported", "generator", "off_by_one"):
            for a in result[case]:
                rows.append(
                    f"| {weights} | {case} | {a['prompt']} | {a['cosine']:.4f} | {a['rel_error']:.3f} | "
                    f"{a['norm_llamacpp']:.1f} | {a['norm_steerfast']:.1f} | {a['noise_floor']:.2f} |"
                )
    return "\n".join(rows)


def main(argv=None) -> int:
    import torch

    from ..models import _embedded_gguf, load
    from .llamacpp import LlamaCpp, dequantised_copy

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", help="write the figures here")
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # with llama.cpp's own threads, more oversubscribes a small machine
    model, tok = load()
    results = {}
    with tempfile.TemporaryDirectory() as d:
        prepared = prepare(model, tok, d, args.pairs, args.layer, args.coeff, args.gen_scale)
        weights = {"Q4_1": _embedded_gguf(), "F32": dequantised_copy(_embedded_gguf(), Path(d) / "f32.gguf")}
        for name, path in weights.items():
            results[name] = run(model, tok, LlamaCpp(path, n_threads=1), prepared)
    print(json.dumps(results["Q4_1"]["settings"]))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
