"""The HTTP protocol the fake serves with: uvicorn's fastest available (httptools, else h11), with
a deadline for a request's head.

uvicorn times out idle keep-alive connections, but not one that is opened and then sends
nothing, or half a request line: such a connection (a slow client, or a "slowloris") holds a
socket and a buffer for ever. Here a connection must send a complete request head within
`head_timeout` seconds of connecting (or of the first byte of its next request); otherwise it is
closed. A slow *body* is the application's business (api.http.read_body has its own deadline).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class _HeadDeadline:
    """The deadline's timer, shared by both protocols: armed while a head is awaited."""

    head_timeout = 30.0
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _head_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.head_timeout, self._head_overdue)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_overdue(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing() and self._awaiting_head():
            self.transport.close()

    def _awaiting_head(self) -> bool:
        raise NotImplementedError

    # The protocol's own hooks, extended (this class comes first in the protocols' bases).
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self._awaiting_head():
            self._arm()  # a head has begun (or is awaited): the deadline runs from its first byte
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]


class HeadDeadlineH11Protocol(_HeadDeadline, H11Protocol):
    def _awaiting_head(self) -> bool:
        return self.conn.their_state is h11.IDLE


def _httptools_protocol() -> type[Any] | None:
    """The httptools variant, where httptools is installed (it is a dependency, but has no wheel
    for every platform)."""
    if importlib.util.find_spec("httptools") is None:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeadDeadlineHttpToolsProtocol(_HeadDeadline, HttpToolsProtocol):
        # httptools has no "idle" state to ask: a head is awaited from connecting, and again from
        # the end of each request's body, until its headers are complete.
        _head_pending = True

        def on_headers_complete(self) -> None:
            self._head_pending = False
            self._disarm()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._head_pending = True
            super().on_message_complete()

        def _awaiting_head(self) -> bool:
            # Not while an answer is still going out (a long stream): only an idle connection
            # that has not sent a whole head is overdue.
            return self._head_pending and (self.cycle is None or self.cycle.response_complete)

    return HeadDeadlineHttpToolsProtocol


def protocol_with_head_timeout(seconds: float, implementation: str = "auto") -> type[Any]:
    """The protocol class to give uvicorn (its `http` setting) for this deadline: httptools
    ("auto" where it is installed: several times h11's speed) or h11."""
    base: type[Any] | None = HeadDeadlineH11Protocol
    if implementation in ("auto", "httptools"):
        found = _httptools_protocol()
        if found is None and implementation == "httptools":
            raise RuntimeError("httptools is not installed")
        base = found or base
    elif implementation != "h11":
        raise ValueError(f"unknown HTTP implementation {implementation!r}")
    assert base is not None
    return type(base.__name__, (base,), {"head_timeout": seconds})


def event_loop() -> str:
    """uvicorn's `loop` setting: uvloop where it is installed, else asyncio's own."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
