"""The contract between the HTTP layer (app.py) and the engine (engine.py).

The HTTP layer validates an OpenAI request into `SamplingParams` (refusing what it cannot
honour); the engine runs one request per call and yields `Generated` snapshots. Stop *strings*
are the HTTP layer's (text level: it closes the generator, which cancels the request); stop
token ids and every EOS id of the model are the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_TOP_LOGPROBS = 5


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy (argmax); top_k == 1 is greedy too
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    seed: int | None = None  # same seed + same prompt + same steering -> same tokens, whatever the batch
    logprobs: int | None = None  # None: none; 0: the chosen token's only; 1..MAX_TOP_LOGPROBS: + top-k
    stop_token_ids: tuple[int, ...] = ()  # besides the model's EOS ids

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1


@dataclass
class Generated:
    """What the engine yields: everything generated so far (streaming: after every token)."""

    token_ids: list[int]
    finished: bool = False
    finish_reason: str | None = None  # "stop" (an EOS / stop token id) | "length"
    logprobs: list[float] | None = None  # the chosen token's log-probability, per generated token
    top_logprobs: list[list[tuple[int, float]]] | None = None  # per token: (id, logprob), best first
    prompt_tokens: int = 0
    extra: dict = field(default_factory=dict)

    # the names of transformers' GenerationOutput, for callers written against it
    @property
    def generated_tokens(self) -> list[int]:
        return self.token_ids

    def is_finished(self) -> bool:
        return self.finished
