"""GET /__oss/{bucket}/{object}: result images behind OSS-style signed URLs (no API key)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..images import RESULT_BUCKET, oss_error_xml
from .http import new_request_id, service_of


async def download(request: Request) -> Response:
    service = service_of(request)
    if request.path_params["bucket"] != RESULT_BUCKET:
        got: bytes | tuple[int, str, str] = (404, "NoSuchBucket", "The specified bucket does not exist.")
    else:
        got = service.files.result_png(request.path_params["object_path"], dict(request.query_params))
    if isinstance(got, bytes):
        return Response(got, media_type="image/png")
    status, code, message = got
    body = oss_error_xml(code, message, new_request_id(), request.headers.get("host", ""))
    return Response(body, status_code=status, media_type="application/xml")
