"""The reference for the vLLM plugin: the same request on the HF model, steered by
steerfast's hook oracle (apply_hooks), greedy; and the comparison rule.

Two implementations' fp32 arithmetic differs in the last bits (vLLM's CPU kernels vs HF's),
so greedy tokens may part at a near-tie. Tokens must be equal, except that they may part
where the HF logits' top-2 gap is within the noise measured in the same run: the largest
|logprob difference| between vLLM and HF over every token both produced identically."""

from __future__ import annotations

import torch

import steerfast

NOISE_FACTOR = 4.0  # a gap is a near-tie if within this many times the measured noise


def combined(plans: dict, entries) -> steerfast.SteeringPlan | None:
    plan = None
    for e in entries or ():
        p = plans[e["plan"]]
        if e.get("strength") is not None:
            p = p.with_strength(e["strength"])
        if e.get("positions") is not None:
            p = p.with_positions(e["positions"])
        plan = p if plan is None else plan + p
    return plan


def hf_greedy(model, ids: list[int], plan, n: int) -> tuple[list[int], list[float], list[torch.Tensor]]:
    """(tokens, top-2 logit gap per step, log-probs per step) of the HF model under the hooks."""
    x = torch.tensor([ids])

    def run():
        with torch.no_grad():
            return model.generate(
                x, max_new_tokens=n, do_sample=False, output_scores=True, return_dict_in_generate=True
            )

    if plan is None:
        out = run()
    else:
        with steerfast.apply_hooks(model, plan):
            out = run()
    tokens = out.sequences[0, x.shape[1] :].tolist()
    gaps, lps = [], []
    for s in out.scores:
        top = s[0].float().topk(2).values
        gaps.append(float(top[0] - top[1]))
        lps.append(torch.log_softmax(s[0].float(), -1))
    return tokens, gaps, lps


def compare(results) -> tuple[float, list[str]]:
    """results: [(label, vllm tokens, vllm logprobs of its tokens, hf tokens, hf gaps, hf lps)].

    Returns (noise, failures)."""
    diffs = [0.0]
    for _, got, got_lp, ref, _, lps in results:
        for t, (a, b) in enumerate(zip(got, ref)):
            if a != b:
                break
            diffs.append(abs(got_lp[t] - float(lps[t][a])))
    noise = max(diffs)
    failures = []
    for label, got, _, ref, gaps, _ in results:
        if got == ref:
            continue
        t = next((i for i, (a, b) in enumerate(zip(got, ref)) if a != b), min(len(got), len(ref)))
        if t < min(len(got), len(ref)) and gaps[t] <= NOISE_FACTOR * max(noise, 1e-6):
            continue  # a near-tie within the measured noise: the rest may legitimately differ
        failures.append(
            f"{label}: parts at token {t} (HF top-2 gap {gaps[t] if t < len(gaps) else 'n/a'}, noise {noise:.2e}): vLLM {got} vs HF {ref}"
        )
    return noise, failures
