"""Multiple-choice tasks built so the small real models sit in the 55-80% band (issue 16).

Every task is generated deterministically from a seed (numbers) or from shipped word lists
(English->French, COPA), split into disjoint calib / dev / test parts, with the answer's
position balanced (item i's answer sits at option i mod n_options, the options otherwise in
generation order), so the always-first-option baseline is 1/n_options by construction.

An item is a dict:
    id, prompt, options (each with its leading space), answer (index),
    corrupt_prompt   the same prompt whose demonstrations carry wrong answers (SADI's
                     prompt-side calibration pairs: correct vs corrupted demonstrations),
    group            items sharing a group share their query (English->French reuses words
                     across items: the paired bootstrap resamples whole groups).
A task also names its scoring: "full" (summed log-likelihood of every option token: COPA,
numbers) or "first" (the option's first token only: English->French, whose options are
chosen with distinct first tokens for the tokenizer at hand).

Difficulty knobs (per model, see KNOBS): number of demonstrations, number range, options.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..data import load_jsonl

SPLITS = ("calib", "dev", "test")
TASKS = ("compare", "addition", "en_fr", "copa")


@dataclass
class Task:
    name: str
    scoring: str  # "full" | "first"
    splits: dict[str, list[dict]]
    knobs: dict = field(default_factory=dict)

    def __getitem__(self, split: str) -> list[dict]:
        return self.splits[split]


def _balance(items: list[tuple[str, list[str], int, str, str]], n_opt: int, rng: random.Random) -> list[dict]:
    """Put item i's answer at option i mod n (the other options keep their shuffled order)."""
    out = []
    for i, (prompt, options, answer, corrupt, group) in enumerate(items):
        right = options[answer]
        wrong = [o for j, o in enumerate(options) if j != answer]
        rng.shuffle(wrong)
        pos = i % n_opt
        opts = wrong[:pos] + [right] + wrong[pos:]
        out.append(
            {"prompt": prompt, "options": opts, "answer": pos, "corrupt_prompt": corrupt, "group": group}
        )
    return out


def _split(rows: list, sizes: dict[str, int], name: str) -> dict[str, list]:
    need = sum(sizes.values())
    if len(rows) < need:
        raise ValueError(f"task {name}: {len(rows)} distinct items, {need} needed for {sizes}")
    out, start = {}, 0
    for split in SPLITS:
        out[split] = rows[start : start + sizes[split]]
        start += sizes[split]
    return out


def _fewshot(demos: list[tuple[str, str]], query: str, fmt: Callable[[str, str], str]) -> str:
    return "".join(fmt(q, a) + "\n" for q, a in demos) + fmt(query, "")


# --- two-digit number comparison -------------------------------------------------------------


def compare(seed: int = 0, sizes: dict | None = None, shots: int = 2, max_gap: int = 15) -> Task:
    """'Which number is larger: 47 or 52?' -> ' 52' (the options are the two numbers).

    Knobs: shots (demonstrations), max_gap (|a - b| <= max_gap: close numbers are harder).
    """
    sizes = sizes or {"calib": 200, "dev": 200, "test": 500}
    rng = random.Random(f"compare-{seed}")
    pairs = [(a, b) for a in range(10, 100) for b in range(10, 100) if 0 < abs(a - b) <= max_gap]
    rng.shuffle(pairs)
    # the answer's leading space is in the prompt: both tokenizers split " 71" as " ", "7", "1"
    fmt = lambda q, a: f"Q: Which number is larger, {q}?\nA: {a}"  # noqa: E731
    rows, seen = [], set()
    for a, b in pairs:
        if (b, a) in seen:
            continue
        seen.add((a, b))
        demos = [rng.sample(range(10, 100), 2) for _ in range(shots)]
        demos = [(x, y) if x != y else (x, y + 1 if y < 99 else y - 1) for x, y in demos]
        good = [(f"{x} or {y}", f"{max(x, y)}") for x, y in demos]
        bad = [(f"{x} or {y}", f"{min(x, y)}") for x, y in demos]
        q = f"{a} or {b}"
        options = [f"{a}", f"{b}"]
        rows.append((_fewshot(good, q, fmt), options, int(b > a), _fewshot(bad, q, fmt), f"{a},{b}"))
    parts = _split(rows, sizes, "compare")
    return Task(
        "compare",
        "full",
        {s: _balance(r, 2, rng) for s, r in parts.items()},
        {"shots": shots, "max_gap": max_gap, "seed": seed},
    )


# --- addition with near-miss distractors -----------------------------------------------------


def addition(
    seed: int = 0, sizes: dict | None = None, shots: int = 2, n_options: int = 4, near: str = "rank"
) -> Task:
    """'23 + 48 = ' -> '71' among near misses that differ in the tens digit (carry mistakes:
    s - 10, s + 10, s ± 20), two-digit operands with a two-digit sum, so the options' first
    tokens (the tens digit; both tokenizers split digits) are distinct and the item is
    scored from one forward of the prompt ("first" scoring).

    Knobs: shots, n_options (2-4), near:
      "rank" (default): the options are n consecutive tens s + 10·(j - r), j < n, the
        answer's rank r cycling over the items (a sum whose options would leave two digits
        at that rank is skipped), so "pick the largest / smallest / middle" scores chance;
      "below" (the first studies): s - 10 and s + 10 first, so the answer is never the
        smallest or the largest of 3-4 options, and with 2 options the distractor is always
        s - 10 ("pick the larger" solves it);
      "mixed": s - 10 or s + 10 first by a coin (fixes only the 2-option case).
    """
    if near not in ("rank", "below", "mixed"):
        raise ValueError(f"addition: near must be 'rank', 'below' or 'mixed', got {near!r}")
    sizes = sizes or {"calib": 200, "dev": 200, "test": 500}
    if not 2 <= n_options <= 4:
        raise ValueError(f"addition: n_options must be 2..4, got {n_options}")
    rng = random.Random(f"addition-{seed}")
    fmt = lambda q, a: f"{q} = {a}"  # noqa: E731
    cands = [(a, b) for a in range(10, 90) for b in range(10, 90) if a + b < 100]
    rng.shuffle(cands)
    rows, seen = [], set()
    for a, b in cands:
        if (b, a) in seen:
            continue
        seen.add((a, b))
        s = a + b
        misses = [d for d in (s - 10, s + 10, s + 20, s - 20, s + 30, s - 30) if 10 <= d < 100]
        if near == "rank":
            ranks = [r for r in range(n_options) if s - 10 * r >= 10 and s + 10 * (n_options - 1 - r) < 100]
            r = len(rows) % n_options  # the answer's rank cycles over the kept items
            if r not in ranks:
                continue
            misses = [s + 10 * (j - r) for j in range(n_options) if j != r]
        elif near == "mixed":  # s - 10 or s + 10 first, by a coin
            head = [d for d in misses if abs(d - s) == 10]
            misses = rng.sample(head, len(head)) + rng.sample(misses[len(head) :], len(misses) - len(head))
        else:
            misses = misses[:2] + rng.sample(misses[2:], len(misses) - 2)
        options = [f"{s}"] + [f"{d}" for d in misses[: n_options - 1]]
        demos = [(rng.randrange(10, 50), rng.randrange(10, 50)) for _ in range(shots)]
        good = [(f"{x} + {y}", f"{x + y}") for x, y in demos]
        bad = [(f"{x} + {y}", f"{x + y + rng.choice((10, -10))}") for x, y in demos]
        q = f"{a} + {b}"
        rows.append((_fewshot(good, q, fmt), options, 0, _fewshot(bad, q, fmt), f"{a}+{b}"))
    parts = _split(rows, sizes, "addition")
    return Task(
        "addition",
        "first",
        {s: _balance(r, n_options, rng) for s, r in parts.items()},
        {"shots": shots, "n_options": n_options, "near": near, "seed": seed},
    )


# --- English -> French, first-token scoring --------------------------------------------------


def en_fr(
    tokenizer,
    seed: int = 0,
    sizes: dict | None = None,
    shots: int = 1,
    n_options: int = 4,
    variants: int = 4,
    word_split: tuple[int, int] = (60, 130),
) -> Task:
    """'English: cat\\nFrench:' -> ' chat' among other words' translations, scored by the
    option's first token (distinct first tokens per item, for this tokenizer).

    The shipped list has 248 pairs: words are split disjointly (dev words, test words, the
    rest for calibration and demonstrations), and each query word appears in `variants`
    items (different distractors and demonstrations), so items are grouped by word.
    """
    sizes = sizes or {"calib": 200, "dev": 200, "test": 500}
    rng = random.Random(f"en_fr-{seed}")
    pairs = [(r["input"], r["output"]) for r in load_jsonl("fv_en_fr")]
    first = {fr: tokenizer(" " + fr, add_special_tokens=False)["input_ids"][0] for _, fr in pairs}
    rng.shuffle(pairs)
    n_dev, n_test = word_split
    words = {"dev": pairs[:n_dev], "test": pairs[n_dev : n_dev + n_test], "calib": pairs[n_dev + n_test :]}
    demo_pool = words["calib"]
    fmt = lambda q, a: f"English: {q}\nFrench:{a}"  # noqa: E731
    parts = {}
    for split in SPLITS:
        rows = []
        pool = words[split]
        for _ in range(variants):
            for en, fr in pool:
                if len(rows) >= sizes[split]:
                    break
                others = [p for p in pool + demo_pool if first[p[1]] != first[fr]]
                picked, toks = [], {first[fr]}
                for o in rng.sample(others, len(others)):
                    if first[o[1]] not in toks:
                        picked.append(o)
                        toks.add(first[o[1]])
                    if len(picked) == n_options - 1:
                        break
                demos = rng.sample([p for p in demo_pool if p[0] != en], shots)
                good = [(e, f" {f}") for e, f in demos]
                bad = [(e, " " + rng.choice([p[1] for p in demo_pool if p[1] != f])) for e, f in demos]
                options = [f" {fr}"] + [f" {p[1]}" for p in picked]
                rows.append((_fewshot(good, en, fmt), options, 0, _fewshot(bad, en, fmt), en))
        if len(rows) < sizes[split]:
            raise ValueError(f"en_fr: only {len(rows)} {split} items for {sizes[split]}")
        parts[split] = _balance(rows, n_options, rng)
    return Task(
        "en_fr",
        "first",
        parts,
        {
            "shots": shots,
            "n_options": n_options,
            "variants": variants,
            "word_split": list(word_split),
            "seed": seed,
        },
    )


# --- COPA, full-sentence likelihood ----------------------------------------------------------

_COPA = re.compile(
    r"Premise: (?P<premise>.*)\nWhat (?:was the (?P<q>cause|effect)|(?P<r>happened as a result))\?\nOption 1: (?P<o1>.*)\nOption 2: (?P<o2>.*)\n"
)


def _copa_sentence(row: dict) -> tuple[str, list[str]]:
    m = _COPA.match(row["prompt"])
    if not m:
        raise ValueError(f"COPA row {row.get('id')!r} does not have the shipped format")
    premise = m["premise"].rstrip(".")
    link = " because" if m["q"] == "cause" else " so"  # "happened as a result" is an effect
    lower = lambda s: s[0].lower() + s[1:] if not s.startswith("I ") else s  # noqa: E731
    return premise + link, [" " + lower(m["o1"]), " " + lower(m["o2"])]


def copa(seed: int = 0, sizes: dict | None = None, shots: int = 0) -> Task:
    """'The grass was wet in the morning because' -> ' it had rained during the night.'

    Scored by the summed log-likelihood of the whole continuation. The shipped COPA rows
    (369) do not reach 200 dev + 500 test: the default sizes use all of them (say so).
    """
    rows_in = load_jsonl("mc_copa")
    rng = random.Random(f"copa-{seed}")
    rng.shuffle(rows_in)
    sizes = sizes or {"calib": 69, "dev": 100, "test": 200}
    converted = [(*_copa_sentence(r), r["answer"]) for r in rows_in]
    demo_pool = converted[: sizes["calib"]]
    rows = []
    for prompt, options, answer in converted:
        demos = [d for d in rng.sample(demo_pool, min(len(demo_pool), shots + 1)) if d[0] != prompt][:shots]
        good = "".join(f"{p}{o[a]}\n" for p, o, a in demos)
        bad = "".join(f"{p}{o[1 - a]}\n" for p, o, a in demos)
        rows.append((good + prompt, options, answer, bad + prompt, prompt))
    parts = _split(rows, sizes, "copa")
    return Task(
        "copa", "full", {s: _balance(r, 2, rng) for s, r in parts.items()}, {"shots": shots, "seed": seed}
    )


def build(name: str, tokenizer=None, **knobs) -> Task:
    if name == "compare":
        return compare(**knobs)
    if name == "addition":
        return addition(**knobs)
    if name == "en_fr":
        if tokenizer is None:
            raise ValueError("en_fr needs the tokenizer (its options have distinct first tokens)")
        return en_fr(tokenizer, **knobs)
    if name == "copa":
        return copa(**knobs)
    raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")


def first_option_baseline(items: list[dict]) -> float:
    """Accuracy of always answering option 0."""
    return sum(it["answer"] == 0 for it in items) / len(items)


__all__ = [
    "SPLITS",
    "TASKS",
    "Task",
    "compare",
    "addition",
    "en_fr",
    "copa",
    "build",
    "first_option_baseline",
]
