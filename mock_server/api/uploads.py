"""GET /uploads?action=getPolicy&model=M and the OSS-like upload host the policy points at."""

from __future__ import annotations

import asyncio

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from .. import parse
from ..images import oss_error_xml
from ..uploads import UploadRejected
from .faults import carry_out
from .http import call_of, declared_length, new_request_id, public_base_url, reply, service_of


async def get_policy(request: Request) -> Response:
    call = await call_of(request)
    outcome = service_of(request).files.policy_call(call, public_base_url(request))
    instead = await carry_out(outcome.interruption)
    return instead if instead is not None else reply(request, {"data": outcome.value, "request_id": call.request_id})


def _oss_error(request: Request, status: int, code: str, message: str) -> Response:
    body = oss_error_xml(code, message, new_request_id(), request.headers.get("host", ""))
    return Response(body, status_code=status, media_type="application/xml")


async def receive_upload(request: Request) -> Response:
    """The POST form the SDK sends to upload_host; 200 with an empty body on success."""
    service = service_of(request)
    limit = service.uploader.max_file_bytes
    try:
        declared = declared_length(request)
    except parse.BadInput:
        return _oss_error(request, 400, "InvalidArgument", "Content-Length is not a decimal number.")
    if declared is not None and declared > limit + 64 * 1024:
        return _oss_error(request, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
    try:
        # The same read deadline as any request body: a form that stops arriving is refused.
        async with asyncio.timeout(service.config.read_timeout), \
                request.form(max_files=1, max_fields=32, max_part_size=64 * 1024) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                return _oss_error(request, 400, "InvalidArgument", "The form has no file field.")
            data = await upload.read(limit + 1)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            content_type = fields.get("x-oss-content-type") or upload.content_type or "application/octet-stream"
            service.files.accept_upload(fields, data, content_type)
    except TimeoutError:
        return _oss_error(request, 400, "RequestTimeout",
                          "Your socket connection to the server was not read from or written to within the timeout period.")
    except UploadRejected as rejected:
        return _oss_error(request, rejected.status, rejected.code, rejected.message)
    except (MultiPartException, ValueError, AssertionError) as exc:
        return _oss_error(request, 400, "MalformedPOSTRequest", f"The body of your POST request is not well-formed: {exc}")
    return Response(b"", status_code=200)
