"""Reading a DashScope event stream (X-DashScope-SSE: enable): events separated by a blank line,
each of `id:N`, `event:result|error`, a `:HTTP_STATUS/NNN` comment and `data:{json}`. Read to
the letter, with no space after a colon ([sdk]: `event:error`, no space): a value read with the
space the SSE format would allow keeps it, so a stream framed otherwise shows as such."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MEDIA_TYPE = "text/event-stream"
# What the real stream's answer says of itself (observation sse-validation-error-in-stream).
CONTENT_TYPE = "text/event-stream;charset=UTF-8"
_STATUS_COMMENT = "HTTP_STATUS/"


@dataclass(frozen=True)
class Event:
    id: str | None
    event: str | None
    status: int | None   # the :HTTP_STATUS/NNN comment; None when absent or not a number
    data: Any            # the parsed JSON of data:, the raw text when it is not JSON, None when absent


def is_stream(headers: dict[str, str]) -> bool:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return content_type.split(";")[0].strip().lower() == MEDIA_TYPE


def asked_for_stream(headers: dict[str, str]) -> bool:
    return any(k.lower() == "x-dashscope-sse" and v.lower() == "enable" for k, v in headers.items())


def parse(text: str) -> list[Event]:
    """The events of a stream's body, in order."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if not lines:
            continue
        fields: dict[str, str] = {}
        data: list[str] = []
        status = None
        for line in lines:
            if line.startswith(":" + _STATUS_COMMENT) and line[len(_STATUS_COMMENT) + 1:].isdigit():
                status = int(line[len(_STATUS_COMMENT) + 1:])
            elif line.startswith("data:"):
                data.append(line[len("data:"):])
            else:
                name, _, value = line.partition(":")
                fields[name] = value
        payload: Any = None
        if data:
            try:
                payload = json.loads("\n".join(data))
            except ValueError:
                payload = "\n".join(data)
        events.append(Event(fields.get("id"), fields.get("event"), status, payload))
    return events
