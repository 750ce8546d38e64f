"""Text out of token ids as they arrive: an incremental detokenizer, stop strings, SSE.

`IncrementalDecoder.push(ids)` returns the text those ids add. It decodes only a short window
(the tokens since the last complete piece, plus the one before them, so that tokenizers
which drop a leading space of the first token decode in context), never the whole text: a
token is O(window), not O(length). A window whose text ends in U+FFFD (a multi-byte UTF-8
character split across tokens) is held back until the character is complete; `flush()` at
the end gives whatever is still held. Concatenated, the pieces equal
`tokenizer.decode(all ids, skip_special_tokens=True)` for the tokenizers tested.

`StopStrings.feed(text)` holds back text that could be the start of a stop string, and on a
hit returns the text before it and True.
"""

from __future__ import annotations

import json
from functools import lru_cache


class IncrementalDecoder:
    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self.tok, self.skip = tokenizer, skip_special_tokens
        self.ids: list[int] = []
        self.prefix = 0  # start of the decode window (one complete piece before `read`)
        self.read = 0  # ids before this are already in the returned text

    def _decode(self, ids) -> str:
        return self.tok.decode(ids, skip_special_tokens=self.skip)

    def push(self, new_ids) -> str:
        self.ids.extend(new_ids)
        before = self._decode(self.ids[self.prefix : self.read])
        now = self._decode(self.ids[self.prefix :])
        if len(now) > len(before) and not now.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return now[len(before) :]
        return ""

    def flush(self) -> str:
        before = self._decode(self.ids[self.prefix : self.read])
        now = self._decode(self.ids[self.prefix :])
        self.prefix = self.read = len(self.ids)
        return now[len(before) :]


class StopStrings:
    """Cuts the text before the first stop string; holds back a possible stop prefix."""

    def __init__(self, stops: list[str]):
        self.stops = list(stops)
        self.held = ""
        self.hit = False

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        buf = self.held + text
        found = [i for i in (buf.find(s) for s in self.stops) if i >= 0]
        if found:
            self.held, self.hit = "", True
            return buf[: min(found)], True
        keep = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(buf)), keep, -1):
                if buf.endswith(s[:k]):
                    keep = k
                    break
        self.held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: printable stand-ins for the 256 bytes, inverted."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    dec = getattr(backend, "decoder", None)
    return dec is not None and "ByteLevel" in repr(dec)


class TokenText:
    """Per-token strings and UTF-8 bytes for logprobs (a token may be part of a character:
    its bytes are exact for byte-level BPE and SentencePiece byte fallback; its string is
    what decoding it alone gives)."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.byte_level = _is_byte_level(tokenizer)
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def __call__(self, token_id: int) -> tuple[str, list[int]]:
        got = self._cache.get(token_id)
        if got is None:
            text = self.tok.decode([token_id], skip_special_tokens=False)
            got = (text, self._bytes(token_id, text))
            if len(self._cache) < 65536:
                self._cache[token_id] = got
        return got

    def _bytes(self, token_id: int, text: str) -> list[int]:
        piece = self.tok.convert_ids_to_tokens(token_id)
        if isinstance(piece, str):
            if self.byte_level:
                table = _byte_decoder()
                if all(c in table for c in piece):
                    return [table[c] for c in piece]
            if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                try:
                    return [int(piece[3:5], 16)]
                except ValueError:
                    pass
        return list(text.encode("utf-8"))


def sse(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"
