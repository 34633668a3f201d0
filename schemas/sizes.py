"""The catalog's size rules as small classes: what a rule accepts, and what size a request gets.

The rules are data (catalog.json "size_rules", each with a `kind`); each kind is one class here,
and `size_rule()` builds the right one. Everything that differs by kind (the check, the output
size, the edge sizes the contract suite tries) is a method, so no caller branches on the kind.
Pure arithmetic, no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

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


def _digits(low: str, high: str) -> str:
    return low if low == high else f"[{low}-{high}]"


def _any_digits(count: int) -> str:
    return "[0-9]" * min(count, 1) + (f"{{{count}}}" if count > 1 else "")


def _same_length(low: str, high: str) -> list[str]:
    """Regex alternatives for the decimal numbers low..high, both written with the same number of digits."""
    rest = len(low) - 1
    if low == high:
        return [low]
    if low[1:] == "0" * rest and high[1:] == "9" * rest:
        return [_digits(low[0], high[0]) + _any_digits(rest)]
    if low[0] == high[0]:
        return [low[0] + tail for tail in _same_length(low[1:], high[1:])]
    middle = [_digits(str(int(low[0]) + 1), str(int(high[0]) - 1)) + _any_digits(rest)] if int(high[0]) - int(low[0]) > 1 else []
    return ([low[0] + tail for tail in _same_length(low[1:], "9" * rest)] + middle
            + [high[0] + tail for tail in _same_length("0" * rest, high[1:])])


def range_pattern(low: int, high: int) -> str:
    """An ECMA-262 regex group (unanchored) of the integers low..high (low >= 1) written without
    leading zeros, for a JSON Schema `pattern` on a side of a W*H size."""
    parts: list[str] = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        parts += _same_length(str(max(low, 10 ** (digits - 1))), str(min(high, 10**digits - 1)))
    return "(" + "|".join(parts) + ")"


def _round_to(value: float, step: int) -> int:
    # Python's round() is half-to-even: 1033 -> 1040 and 1032 -> 1024, the two cases the docs give.
    return max(step, int(round(value / step)) * step)


@dataclass(frozen=True)
class AspectRange:
    min: float
    max: float

    def clamp(self, aspect: float) -> float:
        return min(max(aspect, self.min), self.max)

    def allows(self, size: Size) -> bool:
        return self.min <= size[0] / size[1] <= self.max


@dataclass(frozen=True)
class SizeRule:
    """A rule of the catalog. `default` is a size ("1664*928") or None when the default follows
    the last input image's aspect at `default_pixels` pixels."""

    kind: ClassVar[str]
    name: str
    default: str | None
    default_pixels: int | None
    round_to: int | None = None
    source: str = field(default="", compare=False)

    def violation(self, size: Size) -> str | None:
        """Why `size` breaks the rule, or None when the rule accepts it."""
        return None

    def service_message(self, size: Size) -> str | None:
        """The real service's own words for a size this rule refuses, where they were observed
        (observations.json size-messages); None: the fake says it with violation()."""
        return None

    def output(self, requested: Size | None, last_input: Size | None) -> Size:
        """The width and height of the images a request makes. requested: the request's size
        (already known to satisfy the rule), or None; last_input: the last input image's
        dimensions if known (without one the aspect is 1:1)."""
        if requested is not None:
            step = self.round_to
            return (_round_to(requested[0], step), _round_to(requested[1], step)) if step else requested
        if self.default is not None:
            parsed = parse_size(self.default)
            assert parsed is not None, self.default
            return parsed
        assert self.default_pixels is not None
        aspect = last_input[0] / last_input[1] if last_input else 1.0
        return self._from_aspect(aspect, self.default_pixels)

    def _from_aspect(self, aspect: float, pixels: int) -> Size:
        step = self.round_to or 16
        return _round_to(math.sqrt(pixels * aspect), step), _round_to(math.sqrt(pixels / aspect), step)

    def edge_sizes(self) -> tuple[list[str], list[str]]:
        """(sizes just inside, sizes just outside): what the contract suite tries at the edges."""
        return [], []

    def json_schema(self) -> dict[str, Any]:
        """The rule as JSON Schema keywords on the size string (on top of the W*H pattern every
        size has): exactly the sizes violation() accepts, or {} (with a description) where no
        keyword can say it."""
        return {}


@dataclass(frozen=True)
class FixedSizes(SizeRule):
    kind: ClassVar[str] = "fixed"
    sizes: tuple[str, ...] = ()

    def violation(self, size: Size) -> str | None:
        return None if format_size(size) in self.sizes else f"must be one of {', '.join(self.sizes)}"

    def service_message(self, size: Size) -> str | None:
        return None if format_size(size) in self.sizes else f"The size does not match the allowed size {','.join(self.sizes)}."

    def edge_sizes(self) -> tuple[list[str], list[str]]:
        return list(self.sizes), ["1024*1000"]

    def json_schema(self) -> dict[str, Any]:
        return {"enum": list(self.sizes)}


@dataclass(frozen=True)
class PerSide(SizeRule):
    """Each side within [min, max]."""

    kind: ClassVar[str] = "per_side"
    min: int = 512
    max: int = 2048

    def violation(self, size: Size) -> str | None:
        lo, hi = self.min, self.max
        return None if lo <= size[0] <= hi and lo <= size[1] <= hi else f"must have width and height between {lo} and {hi}"

    def _from_aspect(self, aspect: float, pixels: int) -> Size:
        width, height = super()._from_aspect(aspect, pixels)
        return min(max(width, self.min), self.max), min(max(height, self.min), self.max)

    def edge_sizes(self) -> tuple[list[str], list[str]]:
        return ["1033*1032", f"{self.min}*{self.max}"], [f"{self.min - 1}*{self.min}", f"{self.max}*{self.max + 1}"]

    def json_schema(self) -> dict[str, Any]:
        side = range_pattern(self.min, self.max)
        return {"pattern": f"^{side}\\*{side}$", "description": f"width and height each between {self.min} and {self.max}"}


@dataclass(frozen=True)
class NotSettable(PerSide):
    """No size may be chosen (a size given is ignored); the output follows the input."""

    kind: ClassVar[str] = "not_settable"

    def violation(self, size: Size) -> str | None:
        return None

    def output(self, requested: Size | None, last_input: Size | None) -> Size:
        return super().output(None, last_input)

    def edge_sizes(self) -> tuple[list[str], list[str]]:
        return [], []

    def json_schema(self) -> dict[str, Any]:
        return {"description": "not settable: a size given is ignored"}


@dataclass(frozen=True)
class TotalPixels(SizeRule):
    """width*height within [min_pixels, max_pixels], and the aspect within a range if given."""

    kind: ClassVar[str] = "total_pixels"
    min_pixels: int = 0
    max_pixels: int = 0
    aspect: AspectRange | None = None

    def violation(self, size: Size) -> str | None:
        if not self.min_pixels <= size[0] * size[1] <= self.max_pixels:
            return f"must have between {self.min_pixels} and {self.max_pixels} pixels (width*height)"
        if self.aspect and not self.aspect.allows(size):
            return f"must have an aspect ratio (width/height) between {self.aspect.min:g} and {self.aspect.max:g}"
        return None

    def service_message(self, size: Size) -> str | None:
        width, height = size
        if self.min_pixels <= width * height <= self.max_pixels:
            return None
        return (f"Image area must be between {self.min_pixels} and {self.max_pixels} pixels. "
                f"Got area={width * height} (width={width}, height={height}).")

    def _from_aspect(self, aspect: float, pixels: int) -> Size:
        step = self.round_to or 16
        width, height = super()._from_aspect(self.aspect.clamp(aspect) if self.aspect else aspect, pixels)
        # Rounding may step just over the ceiling; step back down a notch where it does.
        while width * height > self.max_pixels:
            width, height = (width - step, height) if width >= height else (width, height - step)
        return width, height

    def edge_sizes(self) -> tuple[list[str], list[str]]:
        inside = ["1024*1024"] if self.min_pixels <= 1024 * 1024 <= self.max_pixels else []
        if self.aspect:
            side = int((self.max_pixels * self.aspect.min) ** 0.5) // 16 * 16
            inside.append(f"{side}*{int(side / self.aspect.min)}")
        return inside, ["4096*4096", "256*256"] + (["2048*400"] if self.aspect else [])

    def json_schema(self) -> dict[str, Any]:
        aspect = f", aspect (width/height) between {self.aspect.min:g} and {self.aspect.max:g}" if self.aspect else ""
        return {"description": f"width*height between {self.min_pixels} and {self.max_pixels} pixels{aspect} "
                               "(a product: checked by the service, not expressible in JSON Schema)"}


SIZE_RULE_KINDS: dict[str, type[SizeRule]] = {kind.kind: kind for kind in (FixedSizes, PerSide, NotSettable, TotalPixels)}


def size_rule(name: str, data: dict[str, Any]) -> SizeRule:
    """The rule object of a catalog entry."""
    default = data["default"]
    common: dict[str, Any] = {
        "name": name, "source": data.get("source", ""), "round_to": data.get("round_to"),
        "default": default if isinstance(default, str) else None,
        "default_pixels": None if isinstance(default, str) else default["pixels"],
    }
    kind = SIZE_RULE_KINDS[data["kind"]]
    if kind is FixedSizes:
        return FixedSizes(**common, sizes=tuple(data["sizes"]))
    if kind is TotalPixels:
        aspect = data.get("aspect")
        return TotalPixels(**common, min_pixels=data["min_pixels"], max_pixels=data["max_pixels"],
                           aspect=AspectRange(aspect["min"], aspect["max"]) if aspect else None)
    return kind(**common, **{k: data[k] for k in ("min", "max") if k in data})


def size_violation(rule: SizeRule, size: Size) -> str | None:
    """Why `size` breaks `rule`, or None when the rule accepts it."""
    return rule.violation(size)


def output_size(rule: SizeRule, requested: Size | None, last_input: Size | None) -> Size:
    """The width and height of the images a request produces (see SizeRule.output)."""
    return rule.output(requested, last_input)
