"""Files: result images behind signed URLs, and the upload policy and upload host of local files."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .. import images
from ..accounts import ApiKey
from ..errors import invalid_parameter
from ..uploads import UPLOAD_TTL_SECONDS, UploadRecord, UploadRejected
from .calls import Call, Outcome, caller, scenario_of
from .tasks import REQUEST_SWEEP

if TYPE_CHECKING:
    from ..service import FakeDashScope

RESULT_PREFIX = "results/"
_RESULT_PATH_CONVERTER = re.compile(r":\w+}")


class FileBackend:
    """The result and upload verbs of one FakeDashScope."""

    def __init__(self, service: FakeDashScope):
        self.service = service
        # The result route of the catalog, without its :path converter, ready to format.
        self._result_path = _RESULT_PATH_CONVERTER.sub("}", service.catalog.endpoints["download"].path)

    def policy_call(self, call: Call, base_url: str) -> Outcome[dict[str, Any]]:
        """GET /uploads?action=getPolicy&model=M: who calls, the action, the scenario, the policy."""
        key = caller(self.service, call)
        if call.query.get("action") != "getPolicy":
            raise invalid_parameter(self.service.catalog, "action", "must be getPolicy")
        model = call.query.get("model")
        interruption = scenario_of(self.service, call, "upload-policy", key, model=model)[1]
        if interruption is not None and interruption.stops:
            return Outcome(interruption=interruption)
        return Outcome(self.upload_policy(key, model, base_url, call.request_id), interruption)

    def result_url(self, base_url: str, image_id: str, expires: float) -> str:
        object_path = f"{RESULT_PREFIX}{image_id}.png"
        path = self._result_path.format(bucket=images.RESULT_BUCKET, object_path=object_path)
        return f"{base_url}{path}?{self.service.signer.query(object_path, int(expires))}"

    def result_png(self, object_path: str, query: dict[str, str]) -> bytes | tuple[int, str, str]:
        """The PNG, or (status, OSS code, message) when the URL is not good (now)."""
        now = self.service.clock.now()
        problem = self.service.signer.check(object_path, query.get("Expires"), query.get("OSSAccessKeyId"),
                                            query.get("Signature"), now)
        if problem:
            return (403, *problem)
        image_id = object_path.removeprefix(RESULT_PREFIX).removesuffix(".png")
        record = self.service.store.get_image(image_id) if object_path.startswith(RESULT_PREFIX) else None
        if record is None or record.expires <= now:
            return (404, "NoSuchKey", "The specified key does not exist.")
        return images.render_png(record.prompt, record.seed, record.index, record.width, record.height)

    def upload_policy(self, key: ApiKey, model: str | None, base_url: str, request_id: str) -> dict[str, Any]:
        # Any model name: the real service gives a policy for models outside the image catalog
        # (observation upload-policy-any-model), and the fake cannot tell a real one from a typo.
        if not model:
            raise invalid_parameter(self.service.catalog, "model", "is required")
        return self.service.uploader.policy(key.account, key.region, self.service.clock.now(), base_url, request_id)

    def accept_upload(self, fields: dict[str, str], data: bytes, content_type: str) -> str:
        """Store an uploaded file; its oss:// key, or UploadRejected with the OSS error."""
        now = self.service.clock.now()
        self.service.store.expire(now, REQUEST_SWEEP)
        grant = self.service.uploader.check(fields, len(data), now)
        if self.service.store.uploaded_bytes(grant.directory) + len(data) > grant.limit:
            # One policy buys one file's worth of storage, however many files it is used for.
            raise UploadRejected(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        record = UploadRecord(grant.key, data, content_type, grant.account, grant.region, now + UPLOAD_TTL_SECONDS,
                              grant.directory)
        if not self.service.store.put_upload(record):
            raise UploadRejected(409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")
        return "oss://" + grant.key
