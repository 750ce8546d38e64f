"""Text from a request made safe for a one-line log record.

A request controls some of what is logged (its path, its `user` field, plan names): a newline
there would forge a second log line, a NUL or an escape sequence would corrupt the file or a
terminal. `printable` writes every non-printable character (C0/C1 controls, DEL, the line and
paragraph separators, lone surrogates, ...) as a Python-style escape; `SafeFormatter` applies
it to every record's message, so one record is always one line (a traceback stays below it).
"""

from __future__ import annotations

import logging


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def printable(text: object) -> str:
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else _escape(c) for c in s)


class SafeFormatter(logging.Formatter):
    """A Formatter whose message (the part a request can influence) is escaped to one line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


__all__ = ["printable", "SafeFormatter"]
