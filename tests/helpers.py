import torch

from steerfast.adapters import get_adapter
from steerfast.plan import Intervention, SteeringPlan


def random_plan(model, seed=0, policies=("prefix:3", "from_prompt_end", "prompt_last", "all", "last")):
    """A plan touching every site kind of a model, with the given position policies."""
    g = torch.Generator().manual_seed(seed)
    adapter = get_adapter(model)
    h = adapter.site_dim(model, 0, "mlp.out")
    heads_dim = adapter.site_dim(model, 0, "attn.heads")
    L = adapter.num_layers(model)
    p = list(policies) * 3

    def rows(policy, dim):
        n = int(policy.split(":")[1]) if policy.startswith("prefix") else 1
        return torch.randn(n, dim, generator=g)

    def mask(policy, dim):
        return (rows(policy, dim) > 0.3).float()

    ivs = [
        Intervention(0, "embed.out", "add", rows(p[0], h), p[0], 2.0),
        Intervention(0, "mlp.out", "add", rows(p[1], h), p[1], 3.0),
        Intervention(L - 1, "attn.heads", "scale", mask(p[2], heads_dim), p[2], 4.0),
        Intervention(
            1, "mlp.neurons", "scale", mask(p[3], adapter.site_dim(model, 1, "mlp.neurons")), p[3], -0.7
        )
        if adapter.mlp_neurons is not None
        else Intervention(1, "mlp.out", "scale", mask(p[3], h), p[3], -0.7),
        Intervention(1, "attn.out", "add", rows(p[4], h), p[4], 1.5),
        Intervention(L - 1, "mlp.out", "scale", mask(p[0], h), p[0], 0.5),
    ]
    return SteeringPlan(ivs, "test")


def vader_mean(model, tok, prompts, plan, new_tokens=24):
    """Mean VADER compound score of greedy completions, steered by `plan` (None = unsteered)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    import steerfast

    enc = tok(prompts, return_tensors="pt", padding=True)
    kw = dict(max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        if plan is None:
            out = model.generate(**enc, **kw)
        else:
            with steerfast.patch(model, plan):
                out = model.generate(**enc, **kw)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    analyzer = SentimentIntensityAnalyzer()
    return sum(analyzer.polarity_scores(t)["compound"] for t in texts) / len(texts)
