"""`RequestGate`: checks on a request's body before FastAPI reads it - its size and its type.

FastAPI reads any body it is sent, whatever its size, and a body that does not say it is JSON
is not parsed as JSON (its strict content type, which stops a web page from posting to a
server on localhost without the browser asking first); the request then fails validation with
a message about a missing object that does not name the cause. This ASGI middleware answers
before the app runs:

- 413 when the body is larger than ``max_body_bytes``: at once from a Content-Length header,
  else as soon as the chunks read exceed it, so a large body is never held in memory;
- 415 when a request with a body does not declare ``Content-Type: application/json``.

It buffers bodies up to the limit (the JSON parser needs the whole body anyway) and hands
them on unchanged.
"""

from __future__ import annotations

from email.message import Message

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage


class RequestGate:
    """ASGI middleware: 413 for a body over ``max_body_bytes``, 415 for a body not declared
    as JSON; other requests pass unchanged."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdecimal():
                await _error(400, f"Content-Length must be a number, got {declared!r}")(
                    scope, receive, send
                )
                return
            if int(declared) > self.max_body_bytes:
                await self._too_large(int(declared))(scope, receive, send)
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; there is nobody to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await self._too_large(len(body), at_least=more)(scope, receive, send)
                return
        content_type = headers.get("content-type")
        if body and not _is_json(content_type):
            got = "none" if content_type is None else repr(content_type)
            await _error(
                415,
                "expected a JSON body with the header Content-Type: application/json (curl: "
                f"-H 'Content-Type: application/json'); the request's Content-Type: {got}",
            )(scope, receive, send)
            return

        replayed = False

        async def replay() -> ASGIMessage:
            # the body once, then the client's own messages (a disconnect, for instance)
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    def _too_large(self, size: int, at_least: bool = False) -> JSONResponse:
        return _error(
            413,
            f"the request body has {'more than ' if at_least else ''}{size} bytes; this "
            f"server takes at most {self.max_body_bytes} (seqlstm serve --max-body-bytes)",
        )


def _is_json(content_type: str | None) -> bool:
    """Whether a Content-Type header declares JSON (application/json or application/*+json),
    as FastAPI decides whether to parse a body as JSON."""
    if content_type is None:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)
