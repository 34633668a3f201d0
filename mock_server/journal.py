"""The request journal: the last API requests the fake received, for a test to look at
(GET /__admin/requests).

Cheap on the request path: RequestJournal, an ASGI layer, keeps the request's scope (its
method, path, query string and header list, and what the layers below note in it: route,
request id), the first chunks of its body, and the status and headers its answer starts with. Masking keys, parsing bodies and
filtering happen only when the journal is read.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import parse
from .accounts import mask_key

if TYPE_CHECKING:
    from .service import FakeDashScope

TEXT_CHARS = 2000
# The fake's own pages and control API are not the API: never journaled.
NOT_JOURNALED = ("/__admin", "/openapi.json")
_REQUEST_ID_HEADERS = (b"x-request-id", b"x-dashscope-requestid")
# A header, query parameter or JSON member whose name holds one of these (case, "-" and "_"
# ignored) carries a secret, unless it is an id (api_key_id, OSSAccessKeyId).
_SECRET_WORDS = ("apikey", "token", "secret", "password", "signature", "authorization", "credential", "accesskey", "cookie")


def secret_name(name: str) -> bool:
    folded = name.lower().replace("-", "").replace("_", "")
    return any(word in folded for word in _SECRET_WORDS) and not folded.endswith("id")


class Entry:
    """One request: its scope, kept as it is (the server made it for this request alone, and the
    layers below note in it what they found: the route, the answer's request id, a sync call's
    result URLs), the first chunks of its body, and how its answer started."""

    __slots__ = ("id", "time", "scope", "chunks", "kept", "size", "status", "answer_headers")

    def __init__(self, entry_id: int, time: float, scope: Scope):
        self.id, self.time, self.scope = entry_id, time, scope
        self.chunks: list[bytes] = []
        self.kept = 0   # bytes of the body in chunks
        self.size = 0   # bytes of the body the fake read
        self.status: int | None = None  # None: no answer (yet, or a dropped connection)
        self.answer_headers: Iterable[tuple[bytes, bytes]] = ()

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def query(self) -> bytes:
        return bytes(self.scope.get("query_string", b""))

    @property
    def region(self) -> str | None:
        return self.scope.get("state", {}).get("region")  # type: ignore[no-any-return]

    @property
    def headers(self) -> Iterable[tuple[bytes, bytes]]:
        return self.scope.get("headers") or ()

    @property
    def route(self) -> Any:
        """The handler the router chose (Starlette's scope["endpoint"]; None: no route)."""
        return self.scope.get("endpoint")

    @property
    def request_id(self) -> str | None:
        """The answer's request id: as api.http.request_id_headers noted it, else from a header."""
        noted: str | None = self.scope.get("state", {}).get("request_id")
        if noted is None:
            for name, value in self.answer_headers:
                if name.lower() in _REQUEST_ID_HEADERS:
                    return value.decode("latin-1")
        return noted

    @property
    def results(self) -> list[str] | None:
        """The result URLs a synchronous generation answered with (api.generation notes them):
        the dashboard shows a sync call's images, which no store keeps apart from the answer."""
        return self.scope.get("state", {}).get("result_urls")  # type: ignore[no-any-return]

    @property
    def truncated(self) -> bool:
        return self.size > self.kept


class Masker:
    """Hides the fake's keys (and admin token) wherever they appear, and the values of members
    whose names say they hold a secret, the way the banner and logs show keys (mask_key)."""

    def __init__(self, secrets: Iterable[str | None]):
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.shortest = min((len(s) for s in self.secrets), default=0)

    def text(self, text: str) -> str:
        if self.secrets and len(text) >= self.shortest:
            for secret in self.secrets:
                if secret in text:
                    text = text.replace(secret, mask_key(secret))
        return text

    def member(self, name: str, value: Any) -> Any:
        if secret_name(name):
            return mask_key(value) if isinstance(value, str) else "***"
        return self.document(value)

    def document(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.member(key, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.document(item) for item in value]
        return self.text(value) if isinstance(value, str) else value


class Journal:
    """A ring of the last `capacity` requests (0: none kept), oldest first."""

    def __init__(self, capacity: int, body_bytes: int):
        self.capacity, self.body_bytes = capacity, body_bytes
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._ids = itertools.count(1)

    def open(self, scope: Scope, now: float) -> Entry:
        entry = Entry(next(self._ids), now, scope)
        self._entries.append(entry)
        return entry

    def clear(self) -> None:
        self._entries.clear()

    def read(self, name_of: Callable[[Entry], str | None], secrets: Iterable[str | None], *, endpoint: str | None = None,
             region: str | None = None, status: int | None = None, limit: int | None = None,
             with_results: bool = False) -> dict[str, Any]:
        """{"requests": [...], "total": matching entries, "capacity": N}; `limit`: the last N of them;
        `with_results`: each entry also with "results", the result URLs of its answer ([]: none)."""
        found = []
        for entry in list(self._entries):
            name = name_of(entry)
            if endpoint in (None, name) and region in (None, entry.region) and status in (None, entry.status):
                found.append((entry, name))
        shown = found if limit is None else found[max(0, len(found) - limit):]
        masker = Masker(secrets)
        rendered = [render(entry, name, masker) for entry, name in shown]
        if with_results:
            for shown_entry, (entry, _) in zip(rendered, shown, strict=True):
                shown_entry["results"] = list(entry.results or ())
        return {"requests": rendered, "total": len(found), "capacity": self.capacity}


def route_namer(endpoint_of_handler: Mapping[Any, Any]) -> Callable[[Entry], str | None]:
    """The catalog name of the endpoint an entry was routed to, from the app's endpoint of each
    handler; None: no route, or the path of one with another method (a 405)."""

    def name_of(entry: Entry) -> str | None:
        found = endpoint_of_handler.get(entry.route)
        if found is None or entry.method != found.method and not (entry.method == "HEAD" and found.method == "GET"):
            return None
        return str(found.name)

    return name_of


def secrets_of(service: FakeDashScope) -> list[str | None]:
    """What the journal never shows in full: the fake's keys and its admin token."""
    return [k.key for k in service.keys.all()] + [service.config.admin_token]


def render(entry: Entry, endpoint: str | None, masker: Masker) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in entry.headers:
        name = raw_name.decode("latin-1").lower()
        if not secret_name(name):
            value = masker.text(raw_value.decode("latin-1"))
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    query = {name: masker.member(name, value) for name, value in parse_qsl(entry.query.decode("latin-1"), keep_blank_values=True)}
    return {"id": entry.id, "time": entry.time, "method": entry.method, "path": masker.text(entry.path), "query": query,
            "endpoint": endpoint, "region": entry.region, "status": entry.status, "request_id": entry.request_id,
            "headers": headers, "body": _body(entry, masker)}


def _body(entry: Entry, masker: Masker) -> Any:
    """The parsed JSON body; None when empty; otherwise (not JSON, or cut at the journal's
    body_bytes) the start of its text."""
    if not entry.size:
        return None
    raw = b"".join(entry.chunks)
    if not entry.truncated:
        try:
            return masker.document(parse.json_document(raw))
        except parse.BadInput:
            pass
    text = masker.text(raw.decode("utf-8", errors="replace"))
    return {"text": text[:TEXT_CHARS], "truncated": entry.truncated or len(text) > TEXT_CHARS, "bytes": entry.size}


class RequestJournal:
    """ASGI middleware, inside the region router (it sees the region and the path below it):
    each API request into the service's journal."""

    def __init__(self, app: ASGIApp, service: FakeDashScope):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        journal = self.service.journal
        if scope["type"] != "http" or not journal.capacity or scope["path"] == "/" or scope["path"].startswith(NOT_JOURNALED):
            await self.app(scope, receive, send)
            return
        entry = journal.open(scope, self.service.clock.now())
        room = journal.body_bytes

        async def receive_kept() -> Message:
            message = await receive()
            chunk = message.get("body", b"") if message["type"] == "http.request" else b""
            if chunk:
                entry.size += len(chunk)
                if entry.kept < room:
                    kept = chunk if len(chunk) <= room - entry.kept else chunk[:room - entry.kept]
                    entry.chunks.append(kept)
                    entry.kept += len(kept)
            return message

        async def send_noted(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status, entry.answer_headers = message["status"], message.get("headers") or ()
            await send(message)

        try:
            await self.app(scope, receive_kept, send_noted)
        except Exception:
            if entry.status is None:  # answered by the outermost error handler
                entry.status = 500
            raise
