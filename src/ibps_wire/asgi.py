"""ASGI helpers of both services' fast paths: a request served in front of FastAPI's router when it
is well formed, and handed to the router, untouched, when it is not (`fpslink.api.fast_payments`,
`mock_ibps.fast`)."""

from __future__ import annotations

from collections import deque

from starlette.types import Message, Receive


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI would parse the body as JSON (it reads `application/json; ...` so, and more;
    anything else goes to the route, which decides)."""
    return content_type is not None and content_type.partition(";")[0].strip().lower() == "application/json"


async def read_body(receive: Receive, received: list[Message]) -> bytes | None:
    """The whole body, keeping every message for `replay`; None if the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(received: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives the app the messages already read, in order, then the live ones."""
    pending = deque(received)

    async def replayed() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replayed
