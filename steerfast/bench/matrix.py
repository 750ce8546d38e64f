"""The benchmark matrix: which groups of side-by-side cases run in quick and full mode.

A *group* is one (model, phase, batch, length, engine) setting; its *variants* are timed in
interleaved rounds in the same process, and every ratio is a variant's median over the
group's unsteered median. A variant is `kind` or `kind[sites]`:

    unsteered, unsteered#2   the plain model, twice (an A/A pair: the noise of the group)
    hooks[s]                 steerfast.apply_hooks (plain register_forward_hook baseline)
    reference[s]             steerfast.patch with the torch reference ops
    fused[s]                 steerfast.patch with the fused ops (C++ on CPU)
    bank[s]                  SteeringBank with 8 slots, a distinct plan per batch row
                             (slot i = the same config with seed i; batch 1 uses slot 0),
                             fused ops
    steering-vectors[s], repeng[s]   the peers (additive configs only)

with s one of the site configs in steerfast.bench.plans (1layer, all-add, all-sadi, all-ablate).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .inputs import DECODE_PROMPT
from .peers import PEERS
from .plans import SITE_CONFIGS

BIG_LLAMA = dict(
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=4,
    num_attention_heads=16,
    num_key_value_heads=16,
    max_position_embeddings=2048,
)
MODELS = {
    "default": "SmolLM2-135M-Instruct (embedded, fp32): 30 layers, hidden 576, intermediate 1536",
    "big": (
        "random-init LLaMA, fp32: hidden 2048, intermediate 5632, 16 heads (no GQA), "
        "vocab 32000, 4 layers (a 1B-class LLaMA's width; 4 of its layers to fit the "
        "time budget on 2 shared cores)"
    ),
    "gemma3": (
        "Gemma 3 270M (packaged, fp32): 18 layers, hidden 640, post-norms (attn.out / "
        "mlp.out realised on the post-norm outputs: the wrapped path), vocab 262k"
    ),
}


@dataclass
class Group:
    model: str  # "default" | "big" | "gemma3"
    phase: str  # "prefill" | "decode"
    batch: int
    length: int  # prefill: prompt tokens; decode: tokens generated (timed)
    engine: str = "eager"  # "eager" | "compile"
    variants: list = field(default_factory=list)
    rounds: int = 3  # prefill: timed rounds; decode: ignored (one sample per token)
    warmup: int = 1

    @property
    def id(self) -> str:
        what = f"t{self.length}" if self.phase == "prefill" else f"{self.length}tok"
        return f"{self.model}/{self.phase}/b{self.batch}/{what}/{self.engine}"


def variants(
    kinds=("hooks", "reference", "fused", "bank"),
    sites=SITE_CONFIGS,
    peers=(),
    peer_sites=("1layer", "all-add"),
) -> list[str]:
    out = ["unsteered", "unsteered#2"]
    for s in sites:
        out += [f"{k}[{s}]" for k in kinds]
    for s in peer_sites:
        out += [f"{p}[{s}]" for p in peers]
    return out


COMPILED = ["unsteered", "unsteered#2", "hooks[all-sadi]", "fused[all-sadi]"]
COND = ["unsteered", "unsteered#2", "hooks[cond-add]", "fused[cond-add]", "bank[cond-add]", "fused[all-add]"]
PREFILL_LONG = ["unsteered", "unsteered#2", "hooks[all-sadi]", "fused[all-sadi]", "bank[all-sadi]"]


ABLATE = ["hooks[all-ablate]", "fused[all-ablate]", "bank[all-ablate]"]


def ablation_matrix() -> list[Group]:
    """Only the ablation cells (issue 23): all-layer ablation decode at batch 1 and 8, 128
    rounds each (the ~2 % effects at stake need more rounds than the full matrix's 64)."""
    base = ["unsteered", "unsteered#2"]
    return [
        Group("default", "decode", 1, 128, variants=base + ABLATE),
        Group("default", "decode", 8, 128, variants=base + ABLATE),
    ]


def full_matrix() -> list[Group]:
    # reference ops and bank on the all-layer configs only; the 1-layer config with hooks and
    # fused (and the peers); batch-8 and big-model groups without the reference ops
    main = (
        variants(("hooks", "fused"), ("1layer",))
        + variants(("hooks", "reference", "fused", "bank"), ("all-add", "all-sadi"))[2:]
    )
    lean = (
        variants(("hooks", "fused"), ("1layer",))
        + variants(("hooks", "fused", "bank"), ("all-add", "all-sadi"))[2:]
    )
    peers = [f"{p}[{s}]" for s in ("1layer", "all-add") for p in PEERS]
    return [
        Group("default", "decode", 1, 64, variants=main + peers + ABLATE),
        Group("default", "decode", 8, 64, variants=lean + ABLATE),
        Group("default", "prefill", 1, 128, variants=main + peers, rounds=5),
        Group("default", "prefill", 1, 512, variants=lean, rounds=3),
        Group("default", "prefill", 8, 128, variants=lean, rounds=3),
        Group("big", "decode", 1, 64, variants=lean),
        Group("big", "prefill", 1, 128, variants=lean, rounds=3),
        Group("gemma3", "decode", 1, 32, variants=lean),
        Group("gemma3", "prefill", 1, 128, variants=lean, rounds=3),
        # the cells of issue 15: compiled decode (fullgraph, StaticCache) for hooks, patch and
        # bank (batch 8: a distinct slot per row), and the long batched prefill (SADI only)
        Group("default", "decode", 1, 32, engine="compile", variants=COMPILED),
        Group("default", "decode", 8, 32, engine="compile", variants=COMPILED + ["bank[all-sadi]"]),
        Group("default", "prefill", 8, 512, variants=PREFILL_LONG, rounds=2),
        # issue 23: a conditional plan (all-add gated per request, half the rows gated in);
        # 48 tokens so that its id (default/decode/b8/48tok) selects it alone with --only
        Group("default", "decode", 8, 48, variants=COND),
        Group(
            "default",
            "prefill",
            1,
            128,
            engine="compile",
            rounds=5,
            variants=["unsteered", "unsteered#2", "hooks[all-add]", "fused[all-add]"],
        ),
    ]


def quick_matrix() -> list[Group]:
    return [
        Group(
            "default",
            "decode",
            1,
            16,
            variants=[
                "unsteered",
                "unsteered#2",
                "hooks[all-add]",
                "reference[all-add]",
                "fused[all-add]",
                "hooks[all-sadi]",
                "fused[all-sadi]",
                "bank[all-sadi]",
                "steering-vectors[all-add]",
                "repeng[all-add]",
            ],
        ),
        Group(
            "default",
            "decode",
            8,
            16,
            variants=[
                "unsteered",
                "unsteered#2",
                "hooks[all-add]",
                "fused[all-add]",
                "bank[all-add]",
                "hooks[all-sadi]",
                "fused[all-sadi]",
                "bank[all-sadi]",
            ],
        ),
        Group(
            "default",
            "prefill",
            1,
            128,
            rounds=3,
            variants=[
                "unsteered",
                "unsteered#2",
                "hooks[all-add]",
                "reference[all-add]",
                "fused[all-add]",
                "hooks[all-sadi]",
                "fused[all-sadi]",
            ],
        ),
    ]


# what the full matrix leaves out, and why (goes into the report)
NOT_IN_MATRIX = [
    (
        "prefill 512 at batch 8 beyond all-sadi; compiled decode beyond all-sadi",
        "one forward of 8x512 tokens takes ~25 s and compiling the 30-layer model ~1-3 min per "
        "variant on this shared 2-core machine: these groups measure the worst-case config only "
        "(all-sadi: unsteered, hooks, fused, and the bank where rows differ)",
    ),
    (
        "compiled decode under CUDA graphs (torch.compile mode='reduce-overhead')",
        "GPU only: `python -m steerfast.bench.gpu` (docs/gpu_notes.md)",
    ),
    (
        "reference ops at batch 8 and on the big model; bank / reference on the 1-layer config",
        "time budget: the reference ops are measured on the default model at batch 1 and the bank "
        "on the all-layer configs, where they matter",
    ),
]


def parse_variant(name: str) -> tuple[str, str | None]:
    """'fused[all-add]' -> ('fused', 'all-add'); 'unsteered#2' -> ('unsteered#2', None)."""
    if "[" in name and name.endswith("]"):
        kind, sites = name[:-1].split("[", 1)
        return kind, sites
    return name, None


MATRICES = {"quick": quick_matrix, "full": full_matrix, "ablation": ablation_matrix}

__all__ = [
    "Group",
    "variants",
    "full_matrix",
    "quick_matrix",
    "MATRICES",
    "MODELS",
    "BIG_LLAMA",
    "parse_variant",
    "NOT_IN_MATRIX",
    "DECODE_PROMPT",
]
