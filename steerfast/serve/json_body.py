"""A request's JSON body, parsed once and checked before anything uses it.

Refused with a 400 (a FieldError): bytes that are not UTF-8 JSON, a body that is not an
object, nesting deeper than MAX_DEPTH (a deep body would otherwise hit Python's recursion
limit in the parser or in whatever walks it later: a 500), and any string holding a lone
UTF-16 surrogate (JSON's "\\ud800" decodes to one; no tokenizer or UTF-8 writer accepts it),
named by its path (`messages[0].content`). `prompt_chars` / `steering_names` read what the
security middleware limits and logs off a parsed body.
"""

from __future__ import annotations

import json

from .openai_fields import FieldError

MAX_DEPTH = 32  # an OpenAI request body nests about 5 deep (messages[i].content[j].text)


def parse_body(data: bytes) -> dict:
    try:
        body = json.loads(data)
    except RecursionError:
        raise FieldError(
            None, f"the JSON body nests deeper than {MAX_DEPTH} levels", "malformed_json"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FieldError(None, f"malformed JSON body: {exc}", "malformed_json") from None
    if not isinstance(body, dict):
        raise FieldError(None, "the JSON body must be an object", "malformed_json")
    check_tree(body)
    return body


def check_tree(body: dict) -> None:
    """Depth and lone surrogates, walked without recursion."""
    todo: list[tuple[object, str, int]] = [(body, "", 1)]
    while todo:
        value, path, depth = todo.pop()
        if isinstance(value, str):
            _check_text(value, path)
            continue
        if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
            raise FieldError(
                path or None,
                f"the JSON body nests deeper than {MAX_DEPTH} levels (at {path})",
                "malformed_json",
            )
        if isinstance(value, dict):
            for k, v in value.items():
                _check_text(k, path or "body")
                todo.append((v, f"{path}.{k}" if path else k, depth + 1))
        elif isinstance(value, list):
            todo.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise FieldError(
            path,
            f"{path} holds a lone UTF-16 surrogate ({ascii(bad)} at character {exc.start}); send valid Unicode text",
            "invalid_unicode",
        ) from None


def prompt_chars(path: str, body: dict) -> int:
    """Characters the request asks to tokenise: the prompt, or every message's text."""
    if path == "/v1/completions":
        p = body.get("prompt")
        if isinstance(p, str):
            return len(p)
        if isinstance(p, list):
            return sum(len(x) for x in p if isinstance(x, str))
        return 0
    messages = body.get("messages")
    total = 0
    for m in messages if isinstance(messages, list) else []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            total += sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return total


def steering_names(body: dict) -> list[str]:
    raw = body.get("steering")
    if not isinstance(raw, list):
        return []
    return [e["plan"] for e in raw if isinstance(e, dict) and isinstance(e.get("plan"), str)]


__all__ = ["parse_body", "check_tree", "prompt_chars", "steering_names", "MAX_DEPTH"]
