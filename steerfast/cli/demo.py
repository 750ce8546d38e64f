"""`steerfast demo`, the main job: steered vs unsteered completions on the default model, and decode latency."""

from __future__ import annotations

import textwrap

import torch

from .. import apply_hooks, ops, patch
from ..data import neutral_prompts, sentiment_pairs
from ..models import load
from ..recipes import actadd, caa
from ..timing import interleaved
from .common import add_model_arg

ACTADD_LAYER, ACTADD_COEFF = 6, 5.0  # the settings tests/models/test_default_model.py checks with VADER
CAA_LAYER, CAA_COEFF = 10, 12.0


def _generate(model, tok, prompts, max_new_tokens, min_new_tokens=0):
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
    return tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True)


def _steered(model, plan, fn):
    with patch(model, plan):
        return fn()


def run_demo(
    model_name: str = "smollm2-135m-instruct",
    n_prompts: int = 4,
    max_new_tokens: int = 32,
    rounds: int = 5,
    width: int = 38,
) -> dict:
    model, tok = load(model_name)
    tok.padding_side = "left"
    love = actadd(model, tok, "Love", "Hate", ACTADD_LAYER, coeff=ACTADD_COEFF)
    sentiment = caa(model, tok, sentiment_pairs(), CAA_LAYER, coeff=CAA_COEFF)
    plans = {
        f"ActAdd Love-Hate c=+{ACTADD_COEFF:g}": love,
        f"CAA sentiment c=+{CAA_COEFF:g}": sentiment,
        f"CAA sentiment c=-{CAA_COEFF:g}": sentiment.with_strength(-CAA_COEFF),
    }
    prompts = neutral_prompts()[:n_prompts]
    columns = {"unsteered": _generate(model, tok, prompts, max_new_tokens)}
    for name, plan in plans.items():
        columns[name] = _steered(model, plan, lambda: _generate(model, tok, prompts, max_new_tokens))

    for i, prompt in enumerate(prompts):
        print(f"\n=== {prompt!r}")
        cells = [textwrap.wrap(f"[{k}] " + v[i].replace("\n", " "), width) for k, v in columns.items()]
        for line in range(max(len(c) for c in cells)):
            print(" | ".join((c[line] if line < len(c) else "").ljust(width) for c in cells))

    # decode latency, batch 1, the CAA plan (it steers every generated token)
    one = [prompts[0]]
    gen = lambda: _generate(model, tok, one, max_new_tokens, max_new_tokens)  # noqa: E731

    live = []  # the steering of the case about to run, applied untimed by `before`

    def before(name):
        while live:
            live.pop().__exit__(None, None, None)
        if name == "hooks":
            live.append(apply_hooks(model, sentiment))
        elif name == "patched":
            live.append(patch(model, sentiment))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # all compute on this thread, so its CPU time is the forward's
    try:
        times = interleaved(
            {"unsteered": gen, "hooks": gen, "patched": gen},
            rounds=rounds,
            before=before,
            rotate=True,
            clock="cpu",
        )
    finally:
        before("unsteered")
        torch.set_num_threads(threads)
    base_wall, base_cpu = times["unsteered"]["wall"]["median"], times["unsteered"]["cpu"]["median"]
    print(
        f"\ndecode latency, batch 1, {max_new_tokens} tokens, CAA at layer {CAA_LAYER}, "
        f"ops backend {ops.get_backend()}, 1 torch thread (median of {rounds} interleaved rounds; "
        "the CPU ratio uses this thread's CPU time, which other processes' load does not inflate):"
    )
    for name, t in times.items():
        print(
            f"  {name:<10} {1000 * t['wall']['median'] / max_new_tokens:8.2f} ms/token wall   "
            f"x{t['wall']['median'] / base_wall:.3f} wall   x{t['cpu']['median'] / base_cpu:.3f} CPU"
        )
    return {"columns": columns, "times": times}


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="steered vs unsteered completions and decode latency")
    add_model_arg(p)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.set_defaults(func=run)


def run(args) -> int:
    run_demo(args.model, args.prompts, args.tokens, args.rounds)
    return 0
