"""The plugin on more than Llama: Gemma 3 (the packaged 270M base model: post-norm residual
sites, vLLM's embedding scale) and Qwen2 (a small random-init model saved in HF format),
each with a plan touching every site kind under five position policies plus an ablation,
against the hooks oracle on the HF model."""

import torch
from oracle import compare, hf_greedy

import steerfast
from steerfast.testing import random_plan


def _engine(model_dir, plans: dict, tmp, steerfast=None, **kw):
    from vllm import LLM

    paths = {}
    for name, plan in plans.items():
        paths[name] = str(tmp / f"{name}.safetensors")
        plan.save(paths[name])
    cfg = {"plans": paths, "lanes": 6, **(steerfast or {})}
    return LLM(model=str(model_dir), dtype="float32", enforce_eager=True, max_model_len=256,
               max_num_seqs=16, kv_cache_memory_bytes=1 << 28, additional_config={"steerfast": cfg}, **kw)  # fmt: skip


def _check(llm, model, prompts_ids, plans, n=12):
    from vllm import SamplingParams

    cases = [
        None,
        [{"plan": "every_site"}],
        [{"plan": "every_site", "strength": None}, {"plan": "ablate"}],
        [{"plan": "ablate"}],
    ]
    jobs = [(ids, c) for c in cases for ids in prompts_ids]
    sps = [
        SamplingParams(max_tokens=n, temperature=0, logprobs=1, extra_args={"steering": c} if c else None)
        for _, c in jobs
    ]
    outs = llm.generate([{"prompt_token_ids": ids} for ids, _ in jobs], sps, use_tqdm=False)
    results = []
    for (ids, c), o in zip(jobs, outs):
        got = list(o.outputs[0].token_ids)
        got_lp = [lp[t].logprob for t, lp in zip(got, o.outputs[0].logprobs)]
        plan = None
        for e in c or ():
            plan = plans[e["plan"]] if plan is None else plan + plans[e["plan"]]
        ref, gaps, lps = hf_greedy(model, ids, plan, n)
        results.append((f"{c} on {ids[:4]}", got, got_lp, ref, gaps, lps))
    noise, failures = compare(results)
    assert not failures, "\n".join(failures)
    steered = [r[1] for r in results[len(prompts_ids) :]]
    assert any(s != r[1] for s, r in zip(steered, results)), "steering changed nothing"
    return noise


def test_gemma3_270m(tmp_path):
    from steerfast.models import load
    from steerfast.vllm.export import export_dir

    model, tok = load("gemma3-270m")
    u = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    plans = {
        "every_site": random_plan(model, seed=3),
        "ablate": steerfast.SteeringPlan.ablate_everywhere(model, u, layers=range(2, 9)),
    }
    llm = _engine(export_dir("gemma3-270m"), plans, tmp_path)
    try:
        prompts = [tok(p)["input_ids"] for p in ("The capital of France is", "A recipe for bread: first")]
        _check(llm, model, prompts, plans)
    finally:
        llm.llm_engine.engine_core.shutdown()


def tiny_qwen2(tmp_path, seed: int):
    """A Qwen2-shaped random model (4 heads, 2 KV heads) saved in HF format, with a plan
    touching every site kind and an ablation: (model, tokenizer, plans, model dir)."""
    from steerfast.testing import tiny_model, tiny_tokenizer

    model = tiny_model("qwen2", seed=seed, hidden_size=256, intermediate_size=512, num_attention_heads=4,
                       num_key_value_heads=2, num_hidden_layers=4, max_position_embeddings=256)  # fmt: skip
    tok = tiny_tokenizer()
    model.save_pretrained(tmp_path / "qwen2")
    tok.save_pretrained(tmp_path / "qwen2")
    u = torch.randn(256, generator=torch.Generator().manual_seed(seed + 1))
    plans = {
        "every_site": random_plan(model, seed=seed + 2),
        "ablate": steerfast.SteeringPlan.ablate_everywhere(model, u),
    }
    return model, tok, plans, tmp_path / "qwen2"


def small_prompts(tok) -> list[list[int]]:
    return [tok(p)["input_ids"] for p in ("hello there, steering", "abc def ghi jkl")]


def test_qwen2_small_random(tmp_path):
    model, tok, plans, model_dir = tiny_qwen2(tmp_path, seed=5)
    llm = _engine(model_dir, plans, tmp_path)
    try:
        _check(llm, model, small_prompts(tok), plans)
    finally:
        llm.llm_engine.engine_core.shutdown()
