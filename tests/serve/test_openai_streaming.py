"""The incremental detokenizer and the stop-string matcher (steerfast/serve/streaming.py):
token-by-token pieces concatenate to the whole decode, multi-byte characters split across
tokens are held until complete, and stop strings are cut exactly across piece boundaries."""

import pytest

from steerfast.serve.streaming import IncrementalDecoder, StopStrings, TokenText

TEXTS = ["héllo wörld, naïve café", "日本語のテキスト 🙂 and emoji 👍🏽!", "plain ascii text. Done."]


def _pieces(tok, ids):
    dec = IncrementalDecoder(tok)
    pieces = [dec.push([t]) for t in ids]
    pieces.append(dec.flush())
    return pieces


@pytest.mark.slow
@pytest.mark.parametrize("text", TEXTS)
def test_pieces_equal_the_whole_decode_and_never_split_a_character(default_model, text):
    tok = default_model[1]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    pieces = _pieces(tok, ids)
    assert "".join(pieces) == tok.decode(ids, skip_special_tokens=True)
    assert not any("\ufffd" in p for p in pieces)
    if any(ord(c) > 0x7FF for c in text):  # 3- and 4-byte characters: some token holds a part
        tt = TokenText(tok)
        assert any(tok.decode([t]).endswith("\ufffd") for t in ids)
        assert b"".join(bytes(tt(t)[1]) for t in ids) == text.encode()  # exact bytes per token


def test_pieces_on_the_character_tokenizer():
    from steerfast.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    ids = tok("hello, world")["input_ids"]
    assert "".join(_pieces(tok, ids)) == tok.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize(
    "pieces,stops,want,hit",
    [
        (["Hel", "lo. W", "orld"], ["."], "Hello", True),
        (["ab", "c", "STO", "P", "tail"], ["STOP"], "abc", True),
        (["ST", "x", "STO"], ["STOP"], "STxSTO", False),  # a held prefix that never completes is released
        (["a<", "|e", "nd|>b"], ["<|end|>", "zz"], "a", True),
        (["xyz"], ["y", "xy"], "", True),  # the earliest stop wins
        (["no stop here"], [], "no stop here", False),
    ],
)
def test_stop_strings_cut_across_pieces(pieces, stops, want, hit):
    s = StopStrings(stops)
    out, stopped = "", False
    for p in pieces:
        text, stopped = s.feed(p)
        out += text
        if stopped:
            break
    if not stopped:
        out += s.flush()
    assert (out, stopped) == (want, hit)
