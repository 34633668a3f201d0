"""Result images: deterministic PNGs, OSS-style signed URLs, and reading input images.

A result URL points at the fake itself and carries Expires, OSSAccessKeyId and Signature like
an OSS presigned URL; the signature is an HMAC over the expiry and the object path, so a
changed expiry or path is caught. The picture depends only on (prompt, seed, index) and its
size, so the same seed gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import random
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from functools import lru_cache
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, UnidentifiedImageError

from . import parse

RESULT_BUCKET = "dashscope-result-fake"
# alicdn and many CDNs put the size in the file name: ...-tps-1104-1472.webp, photo_1920x1080.png
_SIZE_IN_URL = re.compile(r"(?<![0-9])([1-9][0-9]{1,4})[x*_-]([1-9][0-9]{1,4})(?![0-9])")


@lru_cache(maxsize=64)
def render_png(prompt: str, seed: int, index: int, width: int, height: int) -> bytes:
    """An RGB PNG of exactly width x height whose content depends only on the arguments."""
    digest = hashlib.sha256(f"{seed}\x00{index}\x00{prompt}".encode()).digest()
    rng = random.Random(digest)
    image = Image.new("RGB", (width, height), tuple(digest[:3]))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(width // 8 + 1, width // 2 + 2), y0 + rng.randrange(height // 8 + 1, height // 2 + 2)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    draw.text((8, 8), f"dashscope-mock #{index} seed {seed}", fill=(255, 255, 255))
    return _unfiltered_png(image)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _unfiltered_png(image: Image.Image) -> bytes:
    """The image as a PNG whose rows carry no filter (type 0), deflated fast. Pillow chooses a
    filter for every row, which is most of the time of saving a large picture, and lets no caller
    turn it off; flat shapes compress well without it (a 1328*1328 result: about 7 ms, not 15)."""
    width, height = image.size
    raw, stride = image.tobytes(), width * 3
    rows = b"".join(b"\x00" + raw[start:start + stride] for start in range(0, height * stride, stride))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows, 1))
            + _png_chunk(b"IEND", b""))


class InvalidImage(ValueError):
    """Bytes that no supported decoder reads."""


def read_image(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of an encoded image; GIFs are read from their first frame.

    Only the header is read, never the pixels, so Pillow's warnings (decompression bomb, corrupt
    EXIF) do not concern us; its hard bomb limit (a canvas no real upload has) still refuses.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return (image.format or "").lower(), image.width, image.height
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"the image announces {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error) as exc:
        # Pillow's plugins signal corrupt files with any of these, depending on the format.
        raise InvalidImage(str(exc)) from exc


def size_from_url(url: str) -> tuple[int, int] | None:
    """The W and H an image URL's file name announces, if any (the fake never downloads it)."""
    name = url.split("?", 1)[0].rsplit("/", 1)[-1]
    matches = _SIZE_IN_URL.findall(name)
    return (int(matches[-1][0]), int(matches[-1][1])) if matches else None


_BASE64_ESCAPES = str.maketrans({"+": "%2B", "/": "%2F", "=": "%3D"})

@dataclass(frozen=True)
class UrlSigner:
    secret: bytes
    access_key_id: str = "LTAI5tFakeDashScopeMock"

    def _signature(self, object_path: str, expires: str) -> str:
        # OSS V1 presigning signs "VERB\n\n\nExpires\n/bucket/object"; the same here, with our key.
        to_sign = f"GET\n\n\n{expires}\n/{RESULT_BUCKET}/{object_path}".encode()
        return base64.b64encode(hmac.new(self.secret, to_sign, hashlib.sha1).digest()).decode("ascii")

    def query(self, object_path: str, expires: int) -> str:
        # What urlencode gives for these values, built directly (one per result URL, on every
        # poll): an integer, a key id of letters and digits, and base64, whose "+/=" are escaped.
        signature = self._signature(object_path, str(expires)).translate(_BASE64_ESCAPES)
        return f"Expires={expires}&OSSAccessKeyId={self.access_key_id}&Signature={signature}"

    def check(self, object_path: str, expires: str | None, access_key_id: str | None, signature: str | None,
              now: float) -> tuple[str, str] | None:
        """None if the URL is good now; else the OSS error (code, message) it gets."""
        if not expires or not signature or not access_key_id:
            return ("AccessDenied", "Anonymous access is forbidden for this operation.")
        try:
            expiry = parse.decimal(expires)
        except parse.BadInput:
            return ("AccessDenied", "Invalid argument: Expires.")
        if access_key_id != self.access_key_id:
            return ("InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")
        # Signed over the text as sent, as OSS does: "007" is not "7".
        if not parse.same_secret(self._signature(object_path, expires), signature):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
        if now >= expiry:
            return ("AccessDenied", "Request has expired.")
        return None


def oss_error_xml(code: str, message: str, request_id: str, host: str) -> bytes:
    """The XML error body OSS answers with."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{escape(code)}</Code>\n  <Message>{escape(message)}</Message>\n"
        f"  <RequestId>{escape(request_id)}</RequestId>\n  <HostId>{escape(host)}</HostId>\n</Error>\n"
    ).encode()
