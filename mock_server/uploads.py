"""Local-file uploads as the SDK does them: an upload policy, then a multipart POST to an
OSS-like upload host served by the fake, then oss://<key> in the request.

The policy is an OSS POST policy (base64 JSON with an expiry and conditions) signed with the
fake's secret; the upload host checks the signature, the expiry, the key prefix and the size.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import parse

UPLOAD_BUCKET = "dashscope-instant-fake"
# What the real policy announces (observation upload-policy-fields): 300 s, 1024 MB a file,
# content-length-range [0, 1 GiB], and a capacity it does not enforce per upload.
POLICY_TTL_SECONDS = 300
ANNOUNCED_FILE_SIZE_MB = 1024
ANNOUNCED_CAPACITY_MB = 999999999
MAX_FILE_SIZE_MB = 100  # what the fake's upload host stores at most per file, unless configured
UPLOAD_TTL_SECONDS = 48 * 3600  # the service keeps such temporary files 48 hours


class UploadRejected(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class UploadRecord:
    key: str
    data: bytes
    content_type: str
    account: str
    region: str
    expires: float
    directory: str  # the upload_dir of the policy it came with: what one policy uploaded is capped


@dataclass(frozen=True)
class Uploader:
    secret: bytes
    access_key_id: str
    upload_path: str  # where the upload host is served (the catalog's "upload" route)
    # What the host stores per file, and per policy for all its files: the fake's bound, below
    # the 1 GiB the policy announces, so that a shared fake cannot be filled with huge files.
    max_file_bytes: int = MAX_FILE_SIZE_MB * 1024 * 1024

    def _sign(self, policy_b64: str) -> str:
        return base64.b64encode(hmac.new(self.secret, policy_b64.encode("ascii"), hashlib.sha1).digest()).decode("ascii")

    def policy(self, account: str, region: str, now: float, base_url: str, token: str) -> dict[str, Any]:
        """The `data` of GET /uploads?action=getPolicy, with the real one's fields and limits;
        its upload_dir ends with `token` (the real one ends with the answer's request_id)."""
        owner = hashlib.sha256(f"{account}/{region}".encode()).hexdigest()[:16]
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        upload_dir = f"dashscope-instant/{owner}/{day}/{token}"
        document = {
            "expiration": datetime.fromtimestamp(now + POLICY_TTL_SECONDS, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": [{"bucket": UPLOAD_BUCKET}, ["starts-with", "$key", upload_dir],
                           ["content-length-range", 0, ANNOUNCED_FILE_SIZE_MB * 1024 * 1024],
                           {"x-fake-owner": f"{account}/{region}"}],
        }
        policy_b64 = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode("ascii")
        return {
            "policy": policy_b64, "signature": self._sign(policy_b64), "upload_dir": upload_dir,
            "upload_host": base_url + self.upload_path, "oss_access_key_id": self.access_key_id,
            "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true",
            "expire_in_seconds": POLICY_TTL_SECONDS, "max_file_size_mb": ANNOUNCED_FILE_SIZE_MB,
            "capacity_limit_mb": ANNOUNCED_CAPACITY_MB,
        }

    def check(self, fields: dict[str, str], size: int, now: float) -> UploadGrant:
        """What an acceptable upload form may store, else UploadRejected (OSS codes)."""
        for name in ("OSSAccessKeyId", "Signature", "policy", "key"):
            if not fields.get(name):
                raise UploadRejected(400, "InvalidArgument", f"{name} is missing from the form.")
        if fields["OSSAccessKeyId"] != self.access_key_id:
            raise UploadRejected(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")
        if not fields["policy"].isascii() or not parse.same_secret(self._sign(fields["policy"]), fields["Signature"]):
            raise UploadRejected(403, "SignatureDoesNotMatch",
                                 "The request signature we calculated does not match the signature you provided.")
        document = json.loads(base64.b64decode(fields["policy"]))  # ours: the signature proved it
        expiration = datetime.strptime(document["expiration"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        if now >= expiration.timestamp():
            raise UploadRejected(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        conditions = document["conditions"]
        prefix = next(c[2] for c in conditions if isinstance(c, list) and c[0] == "starts-with")
        limit = min(self.max_file_bytes, next(c[2] for c in conditions if isinstance(c, list) and c[0] == "content-length-range"))
        owner = next(c["x-fake-owner"] for c in conditions if isinstance(c, dict) and "x-fake-owner" in c)
        if not fields["key"].startswith(prefix + "/") or ".." in fields["key"]:
            raise UploadRejected(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\"]")
        if size > limit:
            raise UploadRejected(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        account, _, region = owner.partition("/")
        return UploadGrant(fields["key"], account, region, prefix, limit)


@dataclass(frozen=True)
class UploadGrant:
    key: str
    account: str
    region: str
    directory: str  # the policy's upload_dir
    limit: int      # bytes the policy allows, for all its files together
