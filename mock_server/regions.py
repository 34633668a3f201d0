"""Which region a request is for: a path prefix on the fake, or the Host of the real domains.

    http://127.0.0.1:8089/ap-southeast-1/api/v1/...   -> ap-southeast-1 (path prefix)
    Host: dashscope-intl.aliyuncs.com, /api/v1/...     -> ap-southeast-1 (the real domain's host,
                                                          e.g. through a proxy or /etc/hosts)
    http://127.0.0.1:8089/api/v1/...                  -> the default region (cn-beijing)

A pure ASGI middleware: it records the region in scope["state"] and strips the prefix (and a
trailing slash), so the routes below know only /api/v1/... .
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send


class RegionRouter:
    def __init__(self, app: ASGIApp, region_base_urls: dict[str, str], default_region: str):
        if default_region not in region_base_urls:
            raise ValueError(f"default region {default_region!r} is not one of {', '.join(region_base_urls)}")
        self.app = app
        self.default_region = default_region
        self.by_prefix = {f"/{region}": region for region in region_base_urls}
        self.by_host = {urlsplit(url).hostname: region for region, url in region_base_urls.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # The scope and its state are this request's own (the server makes them per request):
            # changed in place, as Starlette's router changes them, not copied on every request.
            path = scope["path"]
            prefix = "/" + path.split("/", 2)[1] if path.count("/") >= 2 else None
            state = scope.setdefault("state", {})
            if prefix in self.by_prefix:
                state["region"] = self.by_prefix[prefix]
                scope["path"] = path[len(prefix):]
                scope["raw_path"] = scope["path"].encode("utf-8")
            else:
                host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").split(":")[0].lower()
                state["region"] = self.by_host.get(host, self.default_region)
            if len(scope["path"]) > 1 and scope["path"].endswith("/"):
                # The SDK's asyncio client asks for /tasks/{id}/. Serve it in place: Starlette's
                # slash redirect would point at the stripped path and so lose the region.
                scope["path"] = scope["path"].rstrip("/") or "/"
                scope["raw_path"] = scope["path"].encode("utf-8")
        await self.app(scope, receive, send)
