"""`steerfast convert IN OUT`: steerfast .safetensors <-> GGUF control vector (llama.cpp /
repeng); IN may also be a steering-vectors .pt file."""

from __future__ import annotations

from .common import fit, load_model, read_plan


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a plan: .safetensors <-> .gguf control vector (or .pt in)",
        description=__doc__,
    )
    p.add_argument("input", help=".safetensors plan, .gguf control vector or steering-vectors .pt")
    p.add_argument("output", help=".safetensors or .gguf")
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        help="strength of an imported vector (.gguf default: the recorded one, else 1)",
    )
    p.add_argument(
        "--convention",
        choices=("llamacpp", "repeng"),
        default="llamacpp",
        help=".gguf output: llama.cpp (int32 count, GGUF arch hint, no block 0) or repeng",
    )
    p.add_argument(
        "--allow-positions",
        action="store_true",
        help=".gguf output of a plan that steers some positions: llama.cpp will steer every token",
    )
    p.add_argument("--model", default=None, help="check the plan fits this model before writing")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..interop import save_plan
    from ..plan import describe

    plan = read_plan(args.input, args.scale)
    if args.model:
        model, _ = load_model(args.model)
        fit(plan, model, args.input)
    out = save_plan(plan, args.output, args.convention, args.allow_positions)
    print(describe(plan))
    print(f"wrote {out}")
    return 0
