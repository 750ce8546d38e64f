"""Prompts for the function-vector style tasks (fv_*): zero-shot and few-shot ICL.

A format turns an input into a query string and an output into the answer text that follows
it. The answer keeps the format's leading space (" cold" after "hot ->"), so the tokens a
recipe trains on are exactly the tokens greedy generation should produce.

    zero-shot:  "hot ->"                                     answer " cold"
    few-shot:   "big -> small\nup -> down\n...\nhot ->"      same demonstrations, same format

The default format ("arrow") was chosen on the dev split; see docs/laai_results.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..data import load_jsonl
from ..errors import PlanError, SteeringError

TASKS = ("fv_antonym", "fv_country_capital", "fv_en_fr", "fv_uppercase")


@dataclass(frozen=True)
class Format:
    name: str
    query: str  # with {input}
    answer: str  # with {output}; leading space included
    separator: str  # between demonstrations in a few-shot prompt

    def zero_shot(self, text: str) -> str:
        return self.query.format(input=text)

    def target(self, output: str) -> str:
        return self.answer.format(output=output)

    def few_shot(self, demos: Sequence[tuple[str, str]], text: str) -> str:
        shots = [self.zero_shot(x) + self.target(y) for x, y in demos]
        return self.separator.join(shots + [self.zero_shot(text)])


FORMATS = {
    "arrow": Format("arrow", "{input} ->", " {output}", "\n"),
    "colon": Format("colon", "{input}:", " {output}", "\n"),
    "qa": Format("qa", "Q: {input}\nA:", " {output}", "\n\n"),
}
DEFAULT_FORMAT = "arrow"


def get_format(name: str = DEFAULT_FORMAT) -> Format:
    if name not in FORMATS:
        raise SteeringError(f"unknown prompt format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[name]


@dataclass(frozen=True)
class Task:
    name: str
    demos: list[tuple[str, str]]  # (input, output) of the demonstrations (train split)
    dev: list[tuple[str, str]]
    test: list[tuple[str, str]]


def load_task(name: str, n_demos: int = 5, seed: int = 0) -> Task:
    """The task's demonstrations (first `n_demos` of the train split, shuffled by `seed`), dev, test."""
    import random

    if name not in TASKS:
        raise SteeringError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    if not 1 <= n_demos <= 5:
        raise PlanError(f"LAAI uses 1 to 5 demonstrations, got {n_demos}")
    pairs = lambda split: [(r["input"], r["output"]) for r in load_jsonl(name, split)]  # noqa: E731
    train = pairs("train")
    random.Random(seed).shuffle(train)
    return Task(name, train[:n_demos], pairs("dev"), pairs("test"))


__all__ = ["Format", "FORMATS", "DEFAULT_FORMAT", "get_format", "Task", "load_task", "TASKS"]
