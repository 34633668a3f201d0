"""Server-sent events of the synchronous generation endpoint (X-DashScope-SSE: enable).

Each event is `id:N`, `event:result`, `:HTTP_STATUS/200`, `data:{json}` and a blank line; an
error is `event:error` with the error envelope as data. One result event per image: with
parameters.incremental_output true an event carries only its new image, otherwise every image
so far; the last one has finish_reason "stop" and the usage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..errors import DashScopeError

# As the real stream says it (text/event-stream;charset=UTF-8) [rec].
SSE_MEDIA_TYPE = "text/event-stream;charset=UTF-8"
Events = Iterator[bytes]


def _event(number: int, kind: str, status: int, data: dict[str, Any]) -> bytes:
    return f"id:{number}\nevent:{kind}\n:HTTP_STATUS/{status}\ndata:{json.dumps(data, separators=(',', ':'))}\n\n".encode()


def result_events(urls: list[str], width: int, height: int, request_id: str, incremental: bool) -> Iterator[bytes]:
    for index in range(len(urls)):
        last = index == len(urls) - 1
        content = [{"image": u} for u in (urls[index : index + 1] if incremental else urls[: index + 1])]
        chunk: dict[str, Any] = {
            "output": {"choices": [{"finish_reason": "stop" if last else "null",
                                    "message": {"role": "assistant", "content": content}}]},
            "request_id": request_id,
        }
        if last:
            chunk["usage"] = {"width": width, "height": height, "image_count": len(urls)}
        yield _event(index + 1, "result", 200, chunk)


def error_events(error: DashScopeError, request_id: str) -> Iterator[bytes]:
    yield _event(1, "error", error.status, error.envelope(request_id))
