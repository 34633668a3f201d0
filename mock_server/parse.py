"""The one place where text from outside becomes values: JSON documents and decimal integers.

Every route reads its JSON bodies and numeric query values through here, so one set of bounds
holds everywhere: a JSON document is at most MAX_JSON_DEPTH deep, holds only text that is valid
Unicode (no lone UTF-16 surrogates, which "\\ud800" escapes can smuggle in and which no answer
can then be encoded with) and only finite numbers; a decimal is ASCII digits of bounded length
within a range (str.isdigit() also accepts "²" and "٣", which int() then refuses or reads).
"""

from __future__ import annotations

import hmac
import json
import math
import re
from typing import Any

import orjson

MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_DECIMAL = re.compile(r"[0-9]{1,18}")  # 18 digits: far past any bound we check, far below int()'s limit
_LONG_DIGITS = re.compile(rb"[0-9]{19}")  # a number orjson may not read as json does (an integer past 64 bits)


class BadInput(ValueError):
    """Text that is not what it must be; the message says why, briefly, without echoing it."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput("a number is too large")
    return value


def _no_constant(name: str) -> Any:
    raise BadInput(f"{name} is not JSON")


def json_document(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The parsed document, or BadInput: not JSON, not UTF-8, too deep, bad text, huge numbers."""
    # Bytes whose text alone shows the bounds hold (if they are UTF-8); None: anything else.
    plain = raw if isinstance(raw, bytes) and _plainly_within(raw, max_depth) else None
    if plain is not None and not _LONG_DIGITS.search(plain):
        # Nearly every body: orjson reads it at a tenth of json's cost, and gives the same
        # document for all it accepts here (UTF-8 text, finite numbers, last duplicate key
        # wins); integers past 64 bits, which it reads as floats, are left to json. What it
        # refuses (infinite numbers, a byte order mark, bad JSON) json reads or words below.
        try:
            return orjson.loads(plain)
        except orjson.JSONDecodeError:
            pass
    try:
        document = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except BadInput:
        raise
    except RecursionError:
        raise BadInput(f"nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise BadInput("not UTF-8") from None
    except ValueError as exc:
        # json's own errors, and int()'s refusal of integers over its digit limit
        reason = "a number is too large" if "digits" in str(exc) else "not valid JSON"
        raise BadInput(reason) from None
    if plain is None or json.detect_encoding(plain) not in ("utf-8", "utf-8-sig"):
        _check_tree(document, max_depth)
    return document


def _plainly_within(raw: bytes, max_depth: int) -> bool:
    """Whether the text alone shows the bounds hold, so the tree need not be walked (nearly every
    body), if it is UTF-8: a document cannot nest deeper than it has opening brackets, and a lone
    surrogate needs a \\u escape or, in UTF-8, the surrogate lead byte 0xED (json also reads
    UTF-16 and UTF-32, whose surrogates look like nothing in particular: those are walked)."""
    return raw.count(b"[") + raw.count(b"{") <= max_depth and b"\\u" not in raw and b"\xed" not in raw


def _check_tree(document: Any, max_depth: int) -> None:
    """Depth and text of a parsed document, walked without recursion (the tree may be deep)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise BadInput("text is not valid Unicode (a lone surrogate)")
        elif isinstance(node, (dict, list)):
            if depth > max_depth:
                raise BadInput(f"nested deeper than {max_depth} levels")
            if isinstance(node, dict):
                stack.extend((key, depth) for key in node)
                stack.extend((value, depth + 1) for value in node.values())
            else:
                stack.extend((item, depth + 1) for item in node)


def decimal(text: str, *, low: int = 0, high: int | None = None) -> int:
    """An integer written in ASCII digits within [low, high], or BadInput."""
    if not _DECIMAL.fullmatch(text):
        raise BadInput("not a decimal integer")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise BadInput(f"out of range [{low}, {high if high is not None else '...'}]")
    return value


def same_secret(expected: str, given: str) -> bool:
    """Constant-time comparison of a signature or token with what a caller sent. On bytes:
    hmac.compare_digest refuses (TypeError) str arguments with non-ASCII characters."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))
