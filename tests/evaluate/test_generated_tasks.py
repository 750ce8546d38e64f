"""evaluate/tasks.py: sizes, disjoint splits, balanced answers, correct answers, determinism."""

import pytest

from steerfast.evaluate.tasks import TASKS, build, first_option_baseline


class FirstLetterTokenizer:
    """Token ids = code points, so an option's first token is its first character."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text.lstrip()] or [32]}


def _task(name):
    return build(name, FirstLetterTokenizer())


@pytest.mark.parametrize("name", TASKS)
def test_splits_are_disjoint_balanced_and_sized(name):
    task = _task(name)
    sizes = {s: len(task[s]) for s in ("calib", "dev", "test")}
    if name == "copa":
        assert sizes == {"calib": 69, "dev": 100, "test": 200}  # all 369 shipped rows
    else:
        assert sizes["dev"] >= 200 and sizes["test"] >= 500 and sizes["calib"] >= 200
    groups = {s: {it["group"] for it in task[s]} for s in ("calib", "dev", "test")}
    assert not groups["dev"] & groups["test"]
    assert not groups["calib"] & (groups["dev"] | groups["test"])
    for split in ("dev", "test"):
        items = task[split]
        n = len(items[0]["options"])
        counts = [sum(it["answer"] == j for it in items) for j in range(n)]
        assert max(counts) - min(counts) <= 1
        assert first_option_baseline(items) == pytest.approx(counts[0] / len(items))
        for it in items:
            assert len(set(it["options"])) == n and it["corrupt_prompt"] != it["prompt"] or name == "copa"


def test_answers_are_right():
    for it in _task("compare")["test"][:50]:
        q = it["prompt"].rsplit("larger, ", 1)[1].split("?")[0]
        a, b = (int(x) for x in q.split(" or "))
        assert int(it["options"][it["answer"]]) == max(a, b)
    for it in _task("addition")["test"][:50]:
        a, b = (int(x) for x in it["prompt"].rsplit("\n", 1)[-1].rstrip(" =").split(" + "))
        assert int(it["options"][it["answer"]]) == a + b
        assert len({o[0] for o in it["options"]}) == len(it["options"])  # first tokens differ


def test_generation_is_deterministic_and_seeded():
    assert _task("addition")["test"] == _task("addition")["test"]
    assert build("compare", seed=1)["test"] != _task("compare")["test"]


def test_unknown_task_and_missing_tokenizer():
    with pytest.raises(ValueError, match="unknown task"):
        build("nope")
    with pytest.raises(ValueError, match="needs the tokenizer"):
        build("en_fr")


@pytest.mark.parametrize("n_options", [2, 3, 4])
def test_addition_has_no_order_shortcut(n_options):
    """The answer's rank among the options (by value) is spread evenly over the ranks, so picking the
    largest, the smallest or the middle option scores near chance; the first studies' "below"
    distractors made "pick the larger" perfect with 2 options."""
    items = build("addition", FirstLetterTokenizer(), n_options=n_options)["test"]
    ranks = [sorted(int(o) for o in it["options"]).index(int(it["options"][it["answer"]])) for it in items]
    counts = [ranks.count(r) for r in range(n_options)]
    assert max(counts) - min(counts) <= 1, counts
    for it in items:
        vals = sorted(int(o) for o in it["options"])
        assert all(b - a == 10 for a, b in zip(vals, vals[1:], strict=False))  # near misses, one tens apart
    below = build("addition", FirstLetterTokenizer(), n_options=2, near="below")["test"]
    larger = sum(max(it["options"], key=int) == it["options"][it["answer"]] for it in below)
    assert larger == len(below)  # the shortcut the default removes


def test_addition_rejects_unknown_near():
    with pytest.raises(ValueError, match="near must be"):
        build("addition", FirstLetterTokenizer(), near="random")
