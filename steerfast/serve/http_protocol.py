"""uvicorn's HTTP protocol with an OpenAI-shaped JSON 400 for requests it cannot parse.

A request whose framing is broken (a non-numeric or negative Content-Length, a malformed
request line or header) never reaches the app: uvicorn answers it itself, in plain text.
This subclass of the protocol uvicorn would pick answers the same 400, as JSON
{"error": {"message", "type", "param", "code": "malformed_http"}}, and closes the connection
as uvicorn does.
"""

from __future__ import annotations

import json

from .security import error_json


def json_400_protocol():
    """The protocol class to pass as `uvicorn.Config(http=...)`."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class JSON400Protocol(AutoHTTPProtocol):
        def send_400_response(self, msg: str) -> None:
            body = json.dumps(error_json(400, f"malformed HTTP request: {msg}", "malformed_http")).encode()
            head = (
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            )
            self.transport.write(head + body)
            self.transport.close()

    return JSON400Protocol


__all__ = ["json_400_protocol"]
