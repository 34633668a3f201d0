from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
SHARED = Path(__import__("os").environ.get("DASHSCOPE_KIT_SHARED", REPO.parent / "shared"))


def load_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The official pages and their digest; CI has them beside the clone (../shared)."""
    if not (SHARED / "docs").is_dir():
        pytest.skip(f"the API pages are not at {SHARED}/docs (set DASHSCOPE_KIT_SHARED)")
    return SHARED
