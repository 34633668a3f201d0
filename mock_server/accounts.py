"""Regions, accounts and API keys: who is calling, and from which region's realm of keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ApiKey:
    key: str
    key_id: str     # what the task list's api_key_id filter matches
    account: str
    region: str


class KeyRing:
    """Keys by value; a key exists in exactly one region, as on the real service."""

    def __init__(self, keys: list[ApiKey]):
        self._by_key = {k.key: k for k in keys}
        if len(self._by_key) != len(keys):
            raise ValueError("an API key is listed twice")

    def lookup(self, key: str) -> ApiKey | None:
        return self._by_key.get(key)

    def all(self) -> list[ApiKey]:
        return list(self._by_key.values())

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> KeyRing:
        keys = []
        for account, regions in data["accounts"].items():
            for region, entries in regions.items():
                for entry in entries:
                    keys.append(ApiKey(entry["key"], entry["id"], account, region))
        return cls(keys)


def demo_keys_data() -> dict[str, Any]:
    """The embedded demo accounts (also at fixtures/demo-keys.json)."""
    data: dict[str, Any] = json.loads((resources.files(__package__) / "defaults" / "demo-keys.json").read_text(encoding="utf-8"))
    return data


def load_keys(path: str | Path | None) -> KeyRing:
    data = json.loads(Path(path).read_text(encoding="utf-8")) if path else demo_keys_data()
    return KeyRing.from_data(data)


def mask_key(key: str) -> str:
    """sk-demo-a-bj-1 -> sk-d***j-1: enough to tell keys apart in logs, not enough to use one."""
    return key if len(key) <= 8 else f"{key[:4]}***{key[-3:]}"
