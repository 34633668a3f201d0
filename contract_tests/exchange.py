"""One request and its answer, as the suite saw it; keys are masked before anything keeps it."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

MASK = "sk-***"
SECRET_HEADERS = ("authorization",)
# A DashScope key (sk-<hex>), a demo key of the fake (sk-demoabj1-000...) or any other sk-... token;
# not the "sk-" inside words such as task-query, and not the mask itself.
_KEY = re.compile(r"(?<![A-Za-z0-9_])sk-[A-Za-z0-9][A-Za-z0-9_-]{7,}")


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """The one key masker: the secrets this run knows, then anything else that looks like a key."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _KEY.sub(MASK, text)


@dataclass
class Exchange:
    method: str
    url: str
    endpoint: str            # catalog endpoint name, task-query, task-cancel, task-list, upload-policy, download
    request_headers: dict[str, str]
    request_body: Any        # the JSON sent, or None
    status: int
    response_headers: dict[str, str]
    response_body: Any       # parsed JSON, or the text, or {"bytes": n, "sha256": ...} for images
    elapsed: float = 0.0
    model: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return self.response_body if isinstance(self.response_body, (dict, list)) else None

    @property
    def code(self) -> str | None:
        body = self.json
        return body.get("code") if isinstance(body, dict) else None

    def curl(self) -> str:
        """A command that sends this request again (the key comes from $DASHSCOPE_API_KEY)."""
        parts = ["curl", "-sS", "-X", self.method, shlex.quote(self.url)]
        for name, value in self.request_headers.items():
            if name.lower() in SECRET_HEADERS:
                parts += ["-H", '"Authorization: Bearer $DASHSCOPE_API_KEY"']
            elif name.lower() not in ("content-length", "host", "user-agent", "accept-encoding", "connection", "accept"):
                parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.request_body is not None:
            parts += ["-d", shlex.quote(json.dumps(self.request_body, ensure_ascii=False))]
        return " ".join(parts)

    def to_record(self, secrets: list[str]) -> dict[str, Any]:
        data = asdict(self)
        data["request_headers"] = {k: (MASK if k.lower() in SECRET_HEADERS else v) for k, v in self.request_headers.items()}
        return json.loads(mask(json.dumps(data, ensure_ascii=False, default=str), secrets))

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Exchange:
        return cls(**data)
