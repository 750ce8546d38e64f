#!/usr/bin/env python3
"""Regenerate every dataset under ``steerfast/data/``.

All hand-written content (written for this project, not copied from any
public dataset) lives in scripts/sources/*.json; this script only assigns
splits, ids and answer positions (with a fixed seed) and writes JSONL.

Usage::

    python scripts/make_data.py            # write all files + self-check
    python scripts/make_data.py --check    # only verify the files on disk

Output files (one JSON object per line, UTF-8):

* sentiment_pairs.jsonl   {"id", "positive", "negative"}
* neutral_prompts.jsonl   {"id", "prompt"}
* mc_sentiment.jsonl      {"id", "split", "prompt", "options", "answer"}
* mc_copa.jsonl           (same fields)
* mc_facts.jsonl          (same fields)
* fv_antonym.jsonl        {"id", "split", "input", "output"}
* fv_country_capital.jsonl
* fv_en_fr.jsonl
* fv_uppercase.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

SEED = 20240611
OUT_DIR = Path(__file__).resolve().parents[1] / "steerfast" / "data"
SOURCES = Path(__file__).resolve().with_name("sources")  # the hand-written content, as JSON


def _source(name: str):
    """One hand-written table from scripts/sources/<name>.json (JSON arrays stand for tuples)."""
    return json.loads((SOURCES / f"{name}.json").read_text(encoding="utf-8"))


MC_SPLITS = ("calib", "dev", "test")
MC_MIN = {"calib": 160, "dev": 60, "test": 120}
FV_SPLITS = ("train", "dev", "test")
FV_MIN = {"train": 20, "dev": 40, "test": 120}


def rng_for(name: str) -> random.Random:
    """Independent, deterministic RNG per dataset (stable under reordering)."""
    return random.Random(f"{SEED}:{name}")


def balanced_answers(n: int, rng: random.Random) -> list[int]:
    """n answer indices in {0, 1}, exactly balanced (+-1), shuffled."""
    ans = [0] * (n // 2) + [1] * (n - n // 2)
    rng.shuffle(ans)
    return ans


# ---------------------------------------------------------------------------
# 1. sentiment_pairs.jsonl  (contrastive pairs for CAA)
# ---------------------------------------------------------------------------

# "I {verb} <object>." -- every verb pair fits every object.
VERB_PAIRS_1P = [("love", "hate"), ("enjoy", "dread"), ("adore", "despise"), ("like", "dislike")]
VERB_OBJECTS_1P = _source("verb_objects_1p")

# third-person subject + verb pair (3rd person singular forms).
VERB_PAIRS_3P = [("loves", "hates"), ("enjoys", "dreads"), ("adores", "despises"), ("likes", "dislikes")]
VERB_SENTENCES_3P = _source("verb_sentences_3p")

# "<thing> was {adj}." -- every adjective pair fits every sentence.
ADJ_PAIRS = _source("adj_pairs")
ADJ_SENTENCES = _source("adj_sentences")

# "I feel {adj} ..." -- every feeling pair fits every sentence.
FEEL_PAIRS = _source("feel_pairs")
FEEL_SENTENCES = _source("feel_sentences")

# Fully hand-written pairs (more than one word may differ).
SENTIMENT_PAIRS_MANUAL = _source("sentiment_pairs_manual")


def make_sentiment_pairs() -> list[dict]:
    pairs: list[tuple[str, str]] = []
    for i, obj in enumerate(VERB_OBJECTS_1P):
        p, n = VERB_PAIRS_1P[i % len(VERB_PAIRS_1P)]
        pairs.append((f"I {p} {obj}.", f"I {n} {obj}."))
    for i, sent in enumerate(VERB_SENTENCES_3P):
        p, n = VERB_PAIRS_3P[i % len(VERB_PAIRS_3P)]
        pairs.append((sent.format(p), sent.format(n)))
    for i, sent in enumerate(ADJ_SENTENCES):
        p, n = ADJ_PAIRS[i % len(ADJ_PAIRS)]
        pairs.append((sent.format(p), sent.format(n)))
    for i, sent in enumerate(FEEL_SENTENCES):
        p, n = FEEL_PAIRS[i % len(FEEL_PAIRS)]
        pairs.append((sent.format(p), sent.format(n)))
    pairs.extend(SENTIMENT_PAIRS_MANUAL)
    rng = rng_for("sentiment_pairs")
    rng.shuffle(pairs)
    return [{"id": f"sentpair-{i:04d}", "positive": p, "negative": n} for i, (p, n) in enumerate(pairs)]


# ---------------------------------------------------------------------------
# 2. neutral_prompts.jsonl
# ---------------------------------------------------------------------------

NEUTRAL_PROMPTS = _source("neutral_prompts")

# Words that must not appear in a neutral prompt (self-check).
SENTIMENT_WORDS = set(_source("sentiment_words"))


def make_neutral_prompts() -> list[dict]:
    return [{"id": f"neutral-{i:04d}", "prompt": p} for i, p in enumerate(NEUTRAL_PROMPTS)]


SENTIMENT_PAIRS_MANUAL += [
    ("The kids had a brilliant time at the fair.", "The kids had a miserable time at the fair."),
    ("I am excited about starting university.", "I am worried about starting university."),
    ("The new park is a pleasure to walk in.", "The new park is a chore to walk in."),
    ("Dinner with my in-laws was a real treat.", "Dinner with my in-laws was a real ordeal."),
    (
        "The bakery's bread is always fresh and delicious.",
        "The bakery's bread is always stale and disgusting.",
    ),
    ("I am delighted with the way the house turned out.", "I am unhappy with the way the house turned out."),
    ("Our trip to the museum was fascinating.", "Our trip to the museum was tedious."),
    ("She smiled with joy when she opened the gift.", "She frowned with disgust when she opened the gift."),
    ("The doctor was gentle and reassuring.", "The doctor was rough and dismissive."),
    ("That was the happiest summer of my life.", "That was the saddest summer of my life."),
]


# ---------------------------------------------------------------------------
# 3a. mc_sentiment.jsonl  -- subject + predicate reviews.
# Predicates (not subjects) are split-disjoint: a predicate used in test never
# appears in calib/dev. Each predicate is combined with 4 subjects of its group.
# ---------------------------------------------------------------------------

REVIEW_GROUPS = _source("review_groups")
SUBJECTS_PER_PREDICATE = 4
# per group & polarity: number of predicates in (calib, dev, test)
REVIEW_PRED_SPLIT = (6, 2, 4)
SENT_OPTIONS = [" positive", " negative"]


def sentiment_prompt(review: str) -> str:
    return f'Review: "{review}"\nSentiment (positive or negative):'


def make_mc_sentiment() -> list[dict]:
    rng = rng_for("mc_sentiment")
    rows = []
    for gname, g in REVIEW_GROUPS.items():
        subjects = g["subjects"]
        for label, key in ((0, "pos"), (1, "neg")):
            preds = list(g[key])
            assert len(preds) == sum(REVIEW_PRED_SPLIT), (gname, key)
            rng.shuffle(preds)
            bounds = [
                0,
                REVIEW_PRED_SPLIT[0],
                REVIEW_PRED_SPLIT[0] + REVIEW_PRED_SPLIT[1],
                sum(REVIEW_PRED_SPLIT),
            ]
            for s_idx, split in enumerate(MC_SPLITS):
                for pred in preds[bounds[s_idx] : bounds[s_idx + 1]]:
                    subs = rng.sample(subjects, SUBJECTS_PER_PREDICATE)
                    for sub in subs:
                        rows.append(
                            {
                                "split": split,
                                "group": gname,
                                "pred": pred,
                                "review": f"{sub} {pred}.",
                                "answer": label,
                            }
                        )
    out = []
    for split in MC_SPLITS:
        items = [r for r in rows if r["split"] == split]
        rng.shuffle(items)
        for i, r in enumerate(items):
            out.append(
                {
                    "id": f"mcsent-{split}-{i:04d}",
                    "split": split,
                    "prompt": sentiment_prompt(r["review"]),
                    "options": list(SENT_OPTIONS),
                    "answer": r["answer"],
                }
            )
    return out


# ---------------------------------------------------------------------------
# 3b. mc_copa.jsonl -- COPA-style items written for this project.
# (premise, (cause_right, cause_wrong) | None, (effect_right, effect_wrong) | None)
# All questions about one premise go to the same split.
# ---------------------------------------------------------------------------

COPA_ITEMS = _source("copa_items")

COPA_ITEMS += [
    (
        "The woman's glasses fogged up.",
        ("She walked from the cold street into a warm cafe.", "She was reading a book at home."),
        ("She wiped them with a cloth.", "She could see more clearly."),
    ),
    (
        "The man got a parking ticket.",
        ("He parked in a no-parking zone.", "He washed his car."),
        ("He paid the fine.", "He got his money back."),
    ),
    (
        "The candle went out.",
        ("A gust of wind blew through the window.", "Someone lit another candle nearby."),
        ("The room became dark.", "The room became brighter."),
    ),
    (
        "The girl's teeth were chattering.",
        ("She was very cold.", "She was eating soup."),
        ("Her mother wrapped her in a blanket.", "Her mother opened the freezer."),
    ),
    (
        "The toddler fell asleep in the car.",
        ("He was tired after a long day at the zoo.", "He had just woken from a long nap."),
        ("His father carried him to bed.", "His father took him to a party."),
    ),
    (
        "The woman's bike was stolen.",
        ("She forgot to lock it.", "She kept it in her locked garage."),
        ("She walked to work.", "She rode it to work."),
    ),
    (
        "The crowd ran for shelter.",
        ("It started to pour with rain.", "The sun came out."),
        ("The square was empty.", "The square was packed with people."),
    ),
    (
        "The man's hands were covered in paint.",
        ("He had been painting the fence.", "He had been reading a book."),
        ("He washed them with soap.", "He put on white gloves."),
    ),
    (
        "The students took off their jackets.",
        ("The classroom was hot.", "The classroom was freezing."),
        ("They hung them on their chairs.", "They shivered with cold."),
    ),
    (
        "The man's stomach growled.",
        ("He had not eaten all day.", "He had just eaten a big meal."),
        ("He made himself a sandwich.", "He skipped dinner."),
    ),
    (
        "The girl missed the ball.",
        ("She was looking the other way.", "She was watching the ball closely."),
        ("Her team lost the point.", "Her team won the point."),
    ),
    (
        "The pen ran out of ink.",
        ("It had been used every day for months.", "It was brand new."),
        ("The student borrowed another pen.", "The student kept writing with it."),
    ),
    (
        "The kitchen floor was sticky.",
        ("Someone had spilled honey.", "Someone had just mopped it."),
        ("The man cleaned it with hot water.", "The man walked on it barefoot happily."),
    ),
    (
        "The boy's ice lolly fell on the ground.",
        ("He tripped over a stone.", "He held it tightly."),
        ("He threw it in the bin.", "He put it back in the freezer."),
    ),
]

COPA_OPTIONS = [" 1", " 2"]
COPA_QUESTION = {"cause": "What was the cause?", "effect": "What happened as a result?"}
# item targets for test/dev (filled first, whole premises); the rest is calib
COPA_TARGET = {"test": 124, "dev": 62}


def copa_prompt(premise: str, question: str, opt1: str, opt2: str) -> str:
    return (
        f"Premise: {premise}\n{COPA_QUESTION[question]}\nOption 1: {opt1}\nOption 2: {opt2}\nAnswer: Option"
    )


def make_mc_copa() -> list[dict]:
    rng = rng_for("mc_copa")
    premises = list(COPA_ITEMS)
    rng.shuffle(premises)
    # greedy: fill test, then dev, up to their item targets; the rest is calib
    by_split = {"test": [], "dev": [], "calib": []}
    counts = {"test": 0, "dev": 0, "calib": 0}
    for item in premises:
        n_q = (item[1] is not None) + (item[2] is not None)
        split = next(s for s in ("test", "dev", "calib") if s == "calib" or counts[s] < COPA_TARGET[s])
        by_split[split].append(item)
        counts[split] += n_q
    out = []
    for split in MC_SPLITS:
        qs = []
        for premise, cause, effect in by_split[split]:
            if cause is not None:
                qs.append((premise, "cause", cause))
            if effect is not None:
                qs.append((premise, "effect", effect))
        rng.shuffle(qs)
        answers = balanced_answers(len(qs), rng)
        for i, ((premise, qtype, (right, wrong)), ans) in enumerate(zip(qs, answers)):
            o1, o2 = (right, wrong) if ans == 0 else (wrong, right)
            out.append(
                {
                    "id": f"copa-{split}-{i:04d}",
                    "split": split,
                    "prompt": copa_prompt(premise, qtype, o1, o2),
                    "options": list(COPA_OPTIONS),
                    "answer": ans,
                }
            )
    return out


# ---------------------------------------------------------------------------
# Country -> capital (shared by mc_facts and fv_country_capital).
# Only countries whose capital is unambiguous and current. Deliberately left
# out: split/disputed capitals (Bolivia, South Africa, Sri Lanka, Benin,
# Cote d'Ivoire, Eswatini, Israel, Yemen, Burundi), planned moves (Indonesia,
# Equatorial Guinea), no official capital (Nauru), partially recognised
# states, and names with unstable spellings (Kiribati, Tonga, Sao Tome).
# ---------------------------------------------------------------------------

COUNTRY_CAPITALS = _source("country_capitals")
# country names that take "the" inside a sentence
COUNTRIES_WITH_THE = set(_source("countries_with_the"))


def country_in_sentence(country: str) -> str:
    return f"the {country}" if country in COUNTRIES_WITH_THE else country


# ---------------------------------------------------------------------------
# 3c. mc_facts.jsonl -- (question, correct, plausible-but-wrong), by category.
# Plus generated capital and small-number arithmetic questions.
# ---------------------------------------------------------------------------

FACTS = _source("facts")
N_CAPITAL_QUESTIONS = 80
N_ARITH_PER_OP = 30
FACTS_FRAC = {"test": 0.36, "dev": 0.18}  # rest is calib (per category)


def facts_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def make_capital_questions(rng: random.Random) -> list[tuple[str, str, str]]:
    pool = [
        (region, c, cap) for region, lst in COUNTRY_CAPITALS.items() for c, cap in lst if c != cap
    ]  # skip city-states named like their capital
    rng.shuffle(pool)
    out = []
    for region, country, cap in pool[:N_CAPITAL_QUESTIONS]:
        others = sorted(k for c, k in COUNTRY_CAPITALS[region] if k != cap and c != k)
        wrong = rng.choice(others)
        out.append((f"What is the capital of {country_in_sentence(country)}?", cap, wrong))
    return out


def make_arith_questions(rng: random.Random) -> list[tuple[str, str, str]]:
    out, seen = [], set()

    def add(q: str, ans: int) -> bool:
        if q in seen:
            return False
        seen.add(q)
        wrong = ans + rng.choice([-2, -1, 1, 2])
        if wrong < 0:
            wrong = ans + rng.choice([1, 2])
        out.append((q, str(ans), str(wrong)))
        return True

    for op in ("plus", "minus", "times"):
        n = 0
        while n < N_ARITH_PER_OP:
            if op == "plus":
                a, b = rng.randint(1, 20), rng.randint(1, 20)
                n += add(f"What is {a} + {b}?", a + b)
            elif op == "minus":
                a = rng.randint(2, 20)
                b = rng.randint(1, a - 1)
                n += add(f"What is {a} - {b}?", a - b)
            else:
                a, b = rng.randint(2, 9), rng.randint(2, 9)
                n += add(f"What is {a} times {b}?", a * b)
    return out


def make_mc_facts() -> list[dict]:
    rng = rng_for("mc_facts")
    cats = {k: list(v) for k, v in FACTS.items()}
    cats["capitals"] = make_capital_questions(rng)
    arith = make_arith_questions(rng)
    cats["arithmetic"] = arith
    by_split: dict[str, list] = {s: [] for s in MC_SPLITS}
    for name in sorted(cats):
        items = cats[name]
        rng.shuffle(items)
        n_test = round(len(items) * FACTS_FRAC["test"])
        n_dev = round(len(items) * FACTS_FRAC["dev"])
        by_split["test"] += items[:n_test]
        by_split["dev"] += items[n_test : n_test + n_dev]
        by_split["calib"] += items[n_test + n_dev :]
    out = []
    for split in MC_SPLITS:
        items = by_split[split]
        rng.shuffle(items)
        answers = balanced_answers(len(items), rng)
        for i, ((q, right, wrong), ans) in enumerate(zip(items, answers)):
            opts = [f" {right}", f" {wrong}"] if ans == 0 else [f" {wrong}", f" {right}"]
            out.append(
                {
                    "id": f"facts-{split}-{i:04d}",
                    "split": split,
                    "prompt": facts_prompt(q),
                    "options": opts,
                    "answer": ans,
                }
            )
    return out


# ---------------------------------------------------------------------------
# 4. function-vector tasks
# ---------------------------------------------------------------------------

# (word, standard antonym). Each word appears as an input once; no pair is
# present in both directions. Direction chosen so the expected output is the
# most standard answer.
ANTONYMS = _source("antonyms")

# English -> French (single standard translation, no article, masculine
# singular for adjectives).
EN_FR = _source("en_fr")

# Extra words for the uppercase task (in addition to the lower-case, purely
# alphabetic inputs of fv_antonym and fv_en_fr).
UPPERCASE_EXTRA = _source("uppercase_extra")
N_UPPERCASE = 220

FV_SIZES = {"train": 20, "dev": 40}  # the rest is test


def split_fv(
    name: str, pairs: list[tuple[str, str]], prefix: str, sizes: dict[str, int] = FV_SIZES
) -> list[dict]:
    rng = rng_for(name)
    pairs = list(pairs)
    rng.shuffle(pairs)
    n_tr, n_dev = sizes["train"], sizes["dev"]
    chunks = {"train": pairs[:n_tr], "dev": pairs[n_tr : n_tr + n_dev], "test": pairs[n_tr + n_dev :]}
    out = []
    for split in FV_SPLITS:
        for i, (x, y) in enumerate(chunks[split]):
            out.append({"id": f"{prefix}-{split}-{i:04d}", "split": split, "input": x, "output": y})
    return out


def make_fv_antonym() -> list[dict]:
    return split_fv("fv_antonym", ANTONYMS, "ant")


def make_fv_country_capital() -> list[dict]:
    pairs = [(c, k) for region in COUNTRY_CAPITALS for c, k in COUNTRY_CAPITALS[region]]
    return split_fv("fv_country_capital", pairs, "cap")


def make_fv_en_fr() -> list[dict]:
    return split_fv("fv_en_fr", EN_FR, "enfr")


def make_fv_uppercase() -> list[dict]:
    words = {w for w, _ in ANTONYMS} | {w for w, _ in EN_FR} | set(UPPERCASE_EXTRA)
    words = sorted(w for w in words if w.isascii() and w.isalpha() and w.islower())
    rng = rng_for("fv_uppercase")
    rng.shuffle(words)
    words = sorted(words[:N_UPPERCASE])
    return split_fv("fv_uppercase", [(w, w.upper()) for w in words], "upper")


# ---------------------------------------------------------------------------
# writing + self-check
# ---------------------------------------------------------------------------

BUILDERS = {
    "sentiment_pairs.jsonl": make_sentiment_pairs,
    "neutral_prompts.jsonl": make_neutral_prompts,
    "mc_sentiment.jsonl": make_mc_sentiment,
    "mc_copa.jsonl": make_mc_copa,
    "mc_facts.jsonl": make_mc_facts,
    "fv_antonym.jsonl": make_fv_antonym,
    "fv_country_capital.jsonl": make_fv_country_capital,
    "fv_en_fr.jsonl": make_fv_en_fr,
    "fv_uppercase.jsonl": make_fv_uppercase,
}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    raw = path.read_text(encoding="utf-8")
    assert raw.endswith("\n") and not raw.endswith("\n\n"), f"{path}: bad file ending"
    return [json.loads(line) for line in raw.split("\n")[:-1]]


def _nonempty_strings(obj, where: str) -> None:
    if isinstance(obj, str):
        assert obj.strip(), f"{where}: empty string"
    elif isinstance(obj, list):
        for v in obj:
            _nonempty_strings(v, where)
    elif isinstance(obj, dict):
        for v in obj.values():
            _nonempty_strings(v, where)


def check_common(name: str, rows: list[dict]) -> None:
    ids = [r["id"] for r in rows]
    dup = [k for k, v in Counter(ids).items() if v > 1]
    assert not dup, f"{name}: duplicated ids {dup[:5]}"
    for r in rows:
        _nonempty_strings(r, f"{name}:{r.get('id')}")


def check_mc(name: str, rows: list[dict]) -> dict:
    counts = Counter(r["split"] for r in rows)
    for split, n in MC_MIN.items():
        assert counts[split] >= n, f"{name}: {split} has {counts[split]} < {n}"
    assert set(counts) == set(MC_SPLITS), f"{name}: unexpected splits {set(counts)}"
    prompts = [r["prompt"] for r in rows]
    assert len(set(prompts)) == len(prompts), f"{name}: duplicated prompt"
    for r in rows:
        opts = r["options"]
        assert isinstance(opts, list) and len(opts) == 2, f"{name}:{r['id']} options"
        assert len(set(opts)) == 2, f"{name}:{r['id']} identical options"
        assert all(o.startswith(" ") and o.strip() for o in opts), f"{name}:{r['id']} option format"
        assert r["answer"] in (0, 1), f"{name}:{r['id']} answer"
        assert not r["prompt"].endswith((" ", "\n")), f"{name}:{r['id']} prompt ends with space"
    for split in MC_SPLITS:
        sub = [r for r in rows if r["split"] == split]
        frac = sum(r["answer"] == 0 for r in sub) / len(sub)
        assert 0.4 <= frac <= 0.6, f"{name}: {split} answer-0 fraction {frac:.2f}"
    return dict(counts)


def check_fv(name: str, rows: list[dict]) -> dict:
    counts = Counter(r["split"] for r in rows)
    mins = dict(FV_MIN)
    for split, n in mins.items():
        assert counts[split] >= n, f"{name}: {split} has {counts[split]} < {n}"
    inputs = [r["input"] for r in rows]
    assert len(set(inputs)) == len(inputs), f"{name}: duplicated input"
    for r in rows:
        assert r["input"] == r["input"].strip() and r["output"] == r["output"].strip(), (
            f"{name}:{r['id']} leading/trailing whitespace"
        )
    return dict(counts)


def check_all(data: dict[str, list[dict]]) -> dict[str, dict]:
    summary = {}
    for name, rows in data.items():
        check_common(name, rows)
    # sentiment pairs
    sp = data["sentiment_pairs.jsonl"]
    assert len(sp) >= 160
    for r in sp:
        assert r["positive"] != r["negative"]
    all_sents = [r["positive"] for r in sp] + [r["negative"] for r in sp]
    assert len(set(all_sents)) == len(all_sents), "sentiment_pairs: duplicated sentence"
    summary["sentiment_pairs.jsonl"] = {"all": len(sp)}
    # neutral prompts
    npr = data["neutral_prompts.jsonl"]
    assert len(npr) >= 40 and len({r["prompt"] for r in npr}) == len(npr)
    for r in npr:
        words = {w.strip(",.").lower() for w in r["prompt"].split()}
        assert not words & SENTIMENT_WORDS, f"neutral prompt has sentiment word: {r['prompt']}"
    summary["neutral_prompts.jsonl"] = {"all": len(npr)}
    # multiple choice
    for name in ("mc_sentiment.jsonl", "mc_copa.jsonl", "mc_facts.jsonl"):
        summary[name] = check_mc(name, data[name])
    # mc_copa: a premise never appears in two splits
    prem_split: dict[str, set] = {}
    for r in data["mc_copa.jsonl"]:
        prem_split.setdefault(r["prompt"].split("\n")[0], set()).add(r["split"])
    assert all(len(v) == 1 for v in prem_split.values()), "mc_copa: premise in two splits"
    # mc_sentiment: a review predicate never appears in two splits
    subjects = sorted({s for g in REVIEW_GROUPS.values() for s in g["subjects"]}, key=len, reverse=True)
    pred_split: dict[str, set] = {}
    for r in data["mc_sentiment.jsonl"]:
        review = r["prompt"].split('"')[1]
        subj = next(s for s in subjects if review.startswith(s + " "))
        pred_split.setdefault(review[len(subj) + 1 :], set()).add(r["split"])
    assert all(len(v) == 1 for v in pred_split.values()), "mc_sentiment: predicate in two splits"
    # function vectors
    for name in ("fv_antonym.jsonl", "fv_country_capital.jsonl", "fv_en_fr.jsonl", "fv_uppercase.jsonl"):
        summary[name] = check_fv(name, data[name])
    ant = {(r["input"], r["output"]) for r in data["fv_antonym.jsonl"]}
    both = [(a, b) for a, b in ant if (b, a) in ant]
    assert not both, f"fv_antonym: pair in both directions {both[:5]}"
    for r in data["fv_uppercase.jsonl"]:
        assert r["output"] == r["input"].upper() and r["input"].islower()
    return summary


def main(argv: list[str]) -> int:
    check_only = "--check" in argv
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    data = {}
    for fname, builder in BUILDERS.items():
        path = OUT_DIR / fname
        if not check_only:
            rows = builder()
            write_jsonl(path, rows)
        data[fname] = read_jsonl(path)
        if not check_only:
            assert data[fname] == rows, f"{fname}: round-trip mismatch"
    summary = check_all(data)
    for fname, counts in summary.items():
        print(f"{fname:28s} {counts}")
    print("self-check OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
