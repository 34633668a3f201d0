"""Before any case: one free call proves the target answers and the key authenticates.

A task query for a random id costs nothing on the real service and answers 200 UNKNOWN; a target
that does not answer, or refuses the key, cannot be checked at all: the run stops at once with
exit 2 and a report that says NOT CHECKED, never "no drift"."""

from __future__ import annotations

import uuid

import httpx

from .settings import NO_KEY, Settings

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def preflight(settings: Settings) -> str | None:
    """Why the target cannot be checked, in one line; None when it answers and takes the key.
    The embedded fake is started by the suite itself: nothing to prove beforehand."""
    if settings.embedded:
        return None
    assert settings.base_url is not None
    if not settings.api_key:
        return NO_KEY
    url = f"{settings.base_url}/tasks/{uuid.uuid4()}"
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {settings.api_key}"}, timeout=TIMEOUT)
    except httpx.HTTPError as error:
        return f"{settings.base_url} does not answer ({type(error).__name__}: {str(error)[:120] or 'no detail'})"
    if response.status_code in (401, 403):
        try:
            code = response.json().get("code")
        except ValueError:
            code = None
        return f"{settings.base_url} refuses the key in DASHSCOPE_API_KEY (HTTP {response.status_code} {code or ''})".rstrip()
    return None
