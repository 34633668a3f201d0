"""Output-size arithmetic of the catalog's size rules. Pure functions, no I/O.

The rules are data (catalog.json "size_rules"); this module only knows their four kinds.
"""

from __future__ import annotations

import math
import re
from typing import Any

Size = tuple[int, int]
_SIZE = re.compile(r"^([1-9][0-9]*)\*([1-9][0-9]*)$")


def parse_size(text: Any) -> Size | None:
    """'1024*1536' -> (1024, 1536); anything else -> None."""
    if not isinstance(text, str):
        return None
    m = _SIZE.match(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def format_size(size: Size) -> str:
    return f"{size[0]}*{size[1]}"


def size_violation(rule: dict[str, Any], size: Size) -> str | None:
    """Why `size` breaks `rule`, or None when the rule accepts it."""
    w, h = size
    kind = rule["kind"]
    if kind == "fixed":
        if format_size(size) not in rule["sizes"]:
            return f"must be one of {', '.join(rule['sizes'])}"
    elif kind == "per_side":
        lo, hi = rule["min"], rule["max"]
        if not (lo <= w <= hi and lo <= h <= hi):
            return f"width and height must each be in [{lo}, {hi}]"
    elif kind == "total_pixels":
        lo, hi = rule["min_pixels"], rule["max_pixels"]
        if not lo <= w * h <= hi:
            return f"width*height must be between {lo} and {hi} pixels"
        aspect = rule.get("aspect")
        if aspect and not aspect["min"] <= w / h <= aspect["max"]:
            return f"aspect ratio width/height must be between {aspect['min']:g} and {aspect['max']:g}"
    return None


def _round_to(value: float, step: int) -> int:
    # Python's round() is half-to-even: 1033 -> 1040 and 1032 -> 1024, the two cases the docs give.
    return max(step, int(round(value / step)) * step)


def _from_aspect(aspect: float, pixels: int, rule: dict[str, Any]) -> Size:
    bounds = rule.get("aspect")
    if bounds:
        aspect = min(max(aspect, bounds["min"]), bounds["max"])
    w = math.sqrt(pixels * aspect)
    h = math.sqrt(pixels / aspect)
    step = rule.get("round_to", 16)
    w_r, h_r = _round_to(w, step), _round_to(h, step)
    if rule["kind"] == "per_side" or rule["kind"] == "not_settable":
        lo, hi = rule.get("min", 512), rule.get("max", 2048)
        w_r, h_r = min(max(w_r, lo), hi), min(max(h_r, lo), hi)
    if rule["kind"] == "total_pixels":
        # Rounding may step just over the ceiling; step back down a notch where it does.
        while w_r * h_r > rule["max_pixels"]:
            w_r, h_r = (w_r - step, h_r) if w_r >= h_r else (w_r, h_r - step)
    return w_r, h_r


def output_size(rule: dict[str, Any], requested: Size | None, last_input: Size | None) -> Size:
    """The width and height of the images a request produces.

    requested: the request's size (already known to satisfy the rule), or None.
    last_input: dimensions of the last input image if known; without one the aspect is 1:1.
    """
    if requested is not None and rule["kind"] != "not_settable":
        step = rule.get("round_to")
        return (_round_to(requested[0], step), _round_to(requested[1], step)) if step else requested
    default = rule["default"]
    if isinstance(default, str):
        parsed = parse_size(default)
        assert parsed is not None, default
        return parsed
    aspect = last_input[0] / last_input[1] if last_input else 1.0
    return _from_aspect(aspect, default["pixels"], rule)
