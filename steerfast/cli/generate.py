"""`steerfast generate --plan P --strength S PROMPT...`: greedy completions, steered next to
unsteered, on the same model."""

from __future__ import annotations

import json

from .common import add_model_arg, fit, load_model, read_plan, say


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="steered next to unsteered greedy completions", description=__doc__)
    p.add_argument("prompts", nargs="+", metavar="PROMPT")
    p.add_argument(
        "--plan",
        required=True,
        action="append",
        help=".safetensors plan, .gguf control vector or .pt; repeat to add several up",
    )
    p.add_argument(
        "--strength", type=float, default=None, help="every intervention's strength (default: the plan's own)"
    )
    p.add_argument("--positions", default=None, help="override every intervention's positions")
    p.add_argument("--tokens", type=int, default=24, help="new tokens per completion (default 24)")
    p.add_argument("--out", metavar="JSON", help="also write the completions as JSON")
    add_model_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch
    from tqdm.auto import tqdm

    from .. import patch

    plans = [read_plan(path) for path in args.plan]
    plan = plans[0]
    for other in plans[1:]:
        plan = plan + other
    if args.strength is not None:
        plan = plan.with_strength(args.strength)
    if args.positions is not None:
        plan = plan.with_positions(args.positions)
    model, tok = load_model(args.model)
    fit(plan, model, ", ".join(args.plan))

    def complete(prompt):
        enc = tok([prompt], return_tensors="pt")
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=args.tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
        return tok.decode(out[0, enc.input_ids.shape[1] :], skip_special_tokens=True)

    results = []
    for prompt in tqdm(args.prompts, desc="generate", unit="prompt", disable=len(args.prompts) < 2):
        plain = complete(prompt)
        with patch(model, plan):
            steered = complete(prompt)
        results.append({"prompt": prompt, "unsteered": plain, "steered": steered})
    strengths = sorted({iv.strength for iv in plan.interventions})
    label = f"steered ({plan.method}, strength {', '.join(f'{s:g}' for s in strengths)})"
    for r in results:
        print(f"prompt:    {r['prompt']!r}\n  unsteered: {r['unsteered']!r}\n  {label}: {r['steered']!r}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "plans": args.plan,
                    "method": plan.method,
                    "strengths": strengths,
                    "model": args.model,
                    "tokens": args.tokens,
                    "results": results,
                },
                fh,
                indent=1,
            )
        say(f"wrote {args.out}")
    return 0
