"""Fast multiple-choice scoring for plans that steer from the prompt's last token on.

A plan steering at `prompt_last` (SADI, LAAI) or `from_prompt_end` (CAA) cannot change the
keys and values of the prompt's earlier tokens (the model is causal). So `PrefixScorer`
prefills every item's prompt minus its last token ONCE, unsteered, and keeps the KV caches;
each evaluation of a plan then runs only
  call B: the prompt's last token (steered: its logits score every option's first token),
  call C: the options' remaining tokens, all options of an item in one batch sharing the
          item's cache (steered only for `from_prompt_end` interventions, which steer the
          answer tokens as in generation; skipped when every option is one token).
Per plan this costs one token per item plus the options' tails, instead of the whole prompt
once per option (the old path in multiple_choice.py). The scores equal multiple_choice's up
to float rounding (tests/evaluate/test_fast_scoring.py).

`overwrite=True` realises the official SADI code's semantics instead of the paper's formula:
at each layer the plan touches, the steered site's input at the prompt's last token is
replaced by the unsteered run's recorded vector, masked entries multiplied by s = 1 + δ.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import Tensor
from transformers import DynamicCache

from ..adapters import get_adapter
from ..errors import PlanError
from ..kv_cache_arg import cache_arg
from ..plan import SteeringPlan
from ..runtime import patch
from ..tokens import left_padded, right_padded

STEERABLE = ("prompt_last", "from_prompt_end")


def _check_plan(plan: SteeringPlan | None) -> None:
    if plan is None:
        return
    bad = sorted({iv.positions for iv in plan.interventions if iv.positions not in STEERABLE})
    if bad:
        raise PlanError(
            f"PrefixScorer steers from the prompt's last token on; positions {bad} change the "
            "prompt's earlier tokens: use evaluate.multiple_choice.evaluate for this plan"
        )


def _subplan(plan: SteeringPlan, keep: tuple[str, ...]) -> SteeringPlan | None:
    ivs = [iv for iv in plan.interventions if iv.positions in keep]
    if not ivs:
        return None
    return SteeringPlan(ivs, plan.method, plan.model, plan.meta).with_positions("all")


@contextmanager
def _restored(cache: DynamicCache):
    """Give the cache to a call, then put every layer's state back (updates rebind, not mutate)."""
    saved = [dict(layer.__dict__) for layer in cache.layers]
    try:
        yield cache
    finally:
        for layer, state in zip(cache.layers, saved):
            layer.__dict__.clear()
            layer.__dict__.update(state)


class PrefixScorer:
    """Option log-likelihoods of `items` ({prompt, options, answer}) under many plans.

    scoring: "full" (every option token) or "first" (the option's first token only).
    """

    def __init__(self, model, tokenizer, items: Sequence[dict], scoring: str = "full", batch_size: int = 64):
        if scoring not in ("full", "first"):
            raise ValueError(f"scoring must be 'full' or 'first', got {scoring!r}")
        if not items:
            raise ValueError("no items to score")
        self.model, self.scoring = model, scoring
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.answers = torch.tensor([it["answer"] for it in items])
        self.n = len(items)
        self.device = next(model.parameters()).device
        enc = []
        for i, it in enumerate(items):
            prompt = tokenizer(it["prompt"], add_special_tokens=True)["input_ids"]
            opts = [tokenizer(o, add_special_tokens=False)["input_ids"] for o in it["options"]]
            if len(prompt) < 2 or any(not o for o in opts):
                raise ValueError(f"item {i}: the prompt needs 2+ tokens and every option 1+")
            if scoring == "first":
                opts = [o[:1] for o in opts]
                if len({o[0] for o in opts}) < len(opts):
                    raise ValueError(
                        f"item {i}: options share a first token; first-token scoring cannot tell them apart"
                    )
            enc.append((prompt, opts))
        order = sorted(range(self.n), key=lambda i: (len(enc[i][1]), len(enc[i][0])))
        self.chunks = []
        for s in range(0, self.n, batch_size):
            idx = order[s : s + batch_size]
            self.chunks.append(self._prefill(idx, [enc[i] for i in idx]))
        self._recorded: dict | None = None

    @torch.no_grad()
    def _prefill(self, idx: list[int], enc: list) -> dict:
        prefix = [p[:-1] for p, _ in enc]
        ids, mask, pos = left_padded(prefix, self.pad, self.device)
        cache = DynamicCache()
        self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            **cache_arg(self.model, cache),
            use_cache=True,
            logits_to_keep=1,
        )
        n_opt = [len(o) for _, o in enc]
        rows = [o for _, opts in enc for o in opts]
        tails = None
        if max(len(o) for o in rows) > 1:
            tail, tail_mask = right_padded([o[:-1] for o in rows], self.pad, self.device)
            target, _ = right_padded(
                [o[1:] if len(o) > 1 else [self.pad] for o in rows], self.pad, self.device
            )
            tails = (tail, tail_mask, target, torch.tensor([len(o) - 1 for o in rows], device=self.device))
        return {
            "idx": idx,
            "cache": cache,
            "mask": mask,
            "real": mask.sum(1, keepdim=True),
            "last": torch.tensor([[p[-1]] for p, _ in enc], device=self.device),
            "first": [torch.tensor([o[0] for o in opts]) for _, opts in enc],
            "n_opt": n_opt,
            "tails": tails,
        }

    @torch.no_grad()
    def _chunk_scores(self, ch: dict, plan_b, plan_c, hooks_b) -> list[Tensor]:
        model = self.model
        with _restored(ch["cache"]) as cache:
            mask_b = torch.cat([ch["mask"], torch.ones_like(ch["last"])], 1)
            with ExitStack() as st:
                if plan_b is not None:
                    st.enter_context(patch(model, plan_b))
                for h in hooks_b:
                    st.enter_context(h(ch))
                out = model(
                    input_ids=ch["last"],
                    attention_mask=mask_b,
                    position_ids=ch["real"],
                    **cache_arg(model, cache),
                    use_cache=True,
                )
            first = torch.log_softmax(out.logits[:, -1].float(), -1)
            scores = [first[b, f] for b, f in enumerate(ch["first"])]
            if ch["tails"] is None:
                return scores
            tail, tail_mask, target, lens = ch["tails"]
            reps = torch.tensor(ch["n_opt"], device=self.device)
            if len(set(ch["n_opt"])) != 1:
                raise ValueError("items of one task must have the same number of options")
            cache.batch_repeat_interleave(ch["n_opt"][0])
            mask_c = torch.cat([mask_b.repeat_interleave(reps, 0), tail_mask], 1)
            pos = ch["real"].repeat_interleave(reps, 0) + 1 + torch.arange(tail.shape[1], device=self.device)
            with patch(model, plan_c) if plan_c is not None else ExitStack():
                nxt = model(
                    input_ids=tail,
                    attention_mask=mask_c,
                    position_ids=pos,
                    **cache_arg(model, cache),
                    use_cache=True,
                )
            lp = torch.log_softmax(nxt.logits.float(), -1).gather(2, target.unsqueeze(-1)).squeeze(-1)
            keep = torch.arange(tail.shape[1], device=self.device).unsqueeze(0) < lens.unsqueeze(1)
            rest = (lp * keep).sum(1).split(ch["n_opt"])
            return [s + r.to(s.device) for s, r in zip(scores, rest)]

    def scores(self, plan: SteeringPlan | None = None, overwrite: bool = False) -> list[Tensor]:
        """Per item, a tensor of option log-likelihoods (summed over the scored tokens)."""
        _check_plan(plan)
        plan_b = plan_c = None
        hooks_b = []
        if plan is not None:
            plan_c = _subplan(plan, ("from_prompt_end",))
            if overwrite:
                hooks_b = [self._overwrite_hook(plan)]
            else:
                plan_b = _subplan(plan, STEERABLE)
        out: list = [None] * self.n
        for ch in self.chunks:
            for i, s in zip(ch["idx"], self._chunk_scores(ch, plan_b, plan_c, hooks_b)):
                out[i] = s.cpu()
        return out

    def correct(self, plan: SteeringPlan | None = None, overwrite: bool = False) -> Tensor:
        """(n,) bool: the highest-scoring option is the answer."""
        pred = torch.stack([s.argmax() for s in self.scores(plan, overwrite)])
        return pred == self.answers

    # --- the official code's overwrite semantics ---------------------------------------------

    def _record(self) -> dict:
        """Unsteered input of every input site at the prompt's last token, per chunk."""
        if self._recorded is not None:
            return self._recorded
        adapter = get_adapter(self.model)
        L = len(adapter.layer_modules(self.model))
        rec: dict = {}

        @contextmanager
        def recording(ch):
            handles = []
            for layer in range(L):
                for site in ("attn.heads", "mlp.neurons"):
                    if site == "mlp.neurons" and adapter.mlp_neurons is None:
                        continue
                    mod = adapter.site(self.model, layer, site).module
                    key = (id(ch["cache"]), layer, site)

                    def hook(m, a, key=key):
                        rec[key] = a[0][:, -1].detach().clone()

                    handles.append(mod.register_forward_pre_hook(hook))
            try:
                yield
            finally:
                for h in handles:
                    h.remove()

        for ch in self.chunks:
            self._chunk_scores(ch, None, None, [recording])
        self._recorded = rec
        return rec

    def _overwrite_hook(self, plan: SteeringPlan):
        rec = self._record()
        adapter = get_adapter(self.model)
        for iv in plan.interventions:
            if (
                iv.kind != "scale"
                or iv.site not in ("attn.heads", "mlp.neurons")
                or iv.positions != "prompt_last"
            ):
                raise PlanError(
                    "overwrite semantics applies to SADI masks (scale at attn.heads / mlp.neurons, prompt_last)"
                )

        @contextmanager
        def overwriting(ch):
            handles = []
            for iv in plan.interventions:
                mod = adapter.site(self.model, iv.layer, iv.site).module
                factor = 1.0 + iv.strength * iv.tensor[0].to(self.device)
                saved = rec[(id(ch["cache"]), iv.layer, iv.site)]

                def hook(m, a, saved=saved, factor=factor):
                    x = a[0].clone()
                    x[:, -1] = (saved * factor).to(x.dtype)
                    return (x, *a[1:])

                handles.append(mod.register_forward_pre_hook(hook))
            try:
                yield
            finally:
                for h in handles:
                    h.remove()

        return overwriting


__all__ = ["PrefixScorer", "STEERABLE"]
