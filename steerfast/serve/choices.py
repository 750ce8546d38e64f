"""One choice of a completion as it is built: text (incrementally decoded, stop strings cut),
token ids and logprob entries from the engine's `Generated` snapshots; and the OpenAI JSON
shapes of those logprobs."""

from __future__ import annotations

from .openai_fields import OpenAIRequest
from .params import Generated
from .streaming import IncrementalDecoder, StopStrings, TokenText


class ChoiceState:
    """One choice's text, tokens and logprobs, built from the engine's snapshots as they come."""

    def __init__(self, index: int, tok, token_text: TokenText, req: OpenAIRequest):
        self.index, self.req, self.token_text = index, req, token_text
        self.decoder = IncrementalDecoder(tok)
        self.stops = StopStrings(req.stop)
        self.decoded = 0  # characters decoded so far (before stop holding): text offsets
        self.n_tokens = 0
        self.done = False
        self.finish_reason: str | None = None
        self.text_parts: list[str] = []
        self.token_ids: list[int] = []
        self.lp_entries: list[dict] = []

    def update(self, g: Generated) -> tuple[str, list[int], list[dict]]:
        """(text, token ids, logprob entries) this snapshot adds; sets done / finish_reason."""
        new = g.token_ids[self.n_tokens :]
        start = self.n_tokens
        text, ids, entries = [], [], []
        for j, t in enumerate(new):
            if self.done:
                break
            last = g.finished and j == len(new) - 1
            offset = self.decoded
            frag = self.decoder.push([t]) + (self.decoder.flush() if last else "")
            self.decoded += len(frag)
            out, hit = self.stops.feed(frag)
            if last and not hit:
                out += self.stops.flush()
            text.append(out)
            ids.append(t)
            self.n_tokens += 1
            if g.logprobs is not None:
                k = start + j
                top = g.top_logprobs[k] if g.top_logprobs is not None else []
                entries.append(self._entry(t, g.logprobs[k], top, offset))
            if hit:
                self.done, self.finish_reason = True, "stop"
        if g.finished and not self.done:
            if not new:
                text.append(self.decoder.flush())
                text[-1] = self.stops.feed(text[-1])[0] + self.stops.flush()
            self.done, self.finish_reason = True, g.finish_reason or "length"
        piece = "".join(text)
        self.text_parts.append(piece)
        self.token_ids += ids
        self.lp_entries += entries
        return piece, ids, entries

    def _entry(self, token: int, logprob: float, top, offset: int) -> dict:
        s, b = self.token_text(token)
        e = {"token": s, "logprob": logprob, "bytes": b, "offset": offset, "top": []}
        for tid, lp in top:
            ts, tb = self.token_text(tid)
            e["top"].append({"token": ts, "logprob": lp, "bytes": tb})
        return e

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def logprobs_json(entries: list[dict], chat: bool, k: int, text_base: int = 0):
    """OpenAI's shapes: chat {content: [{token, logprob, bytes, top_logprobs}]}; completions
    {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}."""
    if chat:
        content = [
            {"token": e["token"], "logprob": e["logprob"], "bytes": e["bytes"], "top_logprobs": e["top"]}
            for e in entries
        ]
        return {"content": content, "refusal": None}
    tops = []
    for e in entries:
        top: dict[str, float] = {}
        for a in e["top"] if k > 0 else [e]:  # best first; the best wins a name clash
            top.setdefault(a["token"], a["logprob"])
        tops.append(top)
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": tops,
        "text_offset": [text_base + e["offset"] for e in entries],
    }


__all__ = ["ChoiceState", "logprobs_json"]
