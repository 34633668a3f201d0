"""The second kind of truth: what the real service was observed to do (observations.json), and
how the kit cites it. Schemas mark the parts that follow an observation with "x-evidence"; the
error table and the catalog with "evidence". A finding of the contract suite names its evidence:
an observation with its source, or the doc pages a schema was taken from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from ._loader import cached_schema, read_json


@dataclass(frozen=True)
class Source:
    kind: str  # recording, error-page, async-page, rate-page, sdk, field
    ref: str
    date: str


@dataclass(frozen=True)
class Observation:
    id: str
    summary: str
    endpoints: tuple[str, ...]
    observed: str
    docs: str
    confidence: str  # high, medium, unverified
    decision: str    # followed, agrees, not-followed
    why: str
    sources: tuple[Source, ...]
    fixtures: tuple[str, ...]

    def cite(self) -> str:
        """One line for a report: the id, how sure, and the first source."""
        first = self.sources[0]
        return f"observation {self.id} ({self.confidence}; {first.kind}: {first.ref}, {first.date})"


@cache
def observations() -> dict[str, Observation]:
    """Every observation by id, validated against observations.schema.json once."""
    data = read_json("observations.json")
    errors = sorted(Draft202012Validator(read_json("observations.schema.json")).iter_errors(data), key=str)
    if errors:
        raise ValueError(f"observations.json is not valid: {errors[0].message} at {list(errors[0].absolute_path)}")
    return {
        key: Observation(key, o["summary"], tuple(o["endpoints"]), o["observed"], o["docs"], o["confidence"], o["decision"],
                         o.get("why", ""), tuple(Source(s["kind"], s["ref"], s["date"]) for s in o["sources"]),
                         tuple(o.get("fixtures", ())))
        for key, o in data["observations"].items()
    }


def observation(key: str) -> Observation:
    found = observations().get(key)
    if found is None:
        raise KeyError(f"no observation {key!r} in observations.json")
    return found


def cite(ids: Iterable[str]) -> str:
    return "; ".join(observation(i).cite() for i in ids)


def docs_of_schema(name: str) -> str:
    """Where a message schema was taken from, as its x-sources say: 'docs: page (date), ...'."""
    base = name.partition("#")[0]
    sources = cached_schema(base).get("x-sources") or []
    pages = ", ".join(f"{s.get('page')} ({s.get('date')})" for s in sources if isinstance(s, dict))
    return f"docs: {pages or base}"


def evidence_in(node: Any) -> tuple[str, ...]:
    """The observation ids a schema node (or an error-table / catalog entry) cites."""
    if not isinstance(node, dict):
        return ()
    ids = node.get("x-evidence", node.get("evidence", ()))
    return tuple(ids) if isinstance(ids, list | tuple) else ()


def error_evidence(entry: dict[str, Any]) -> str:
    """The evidence of an error-table entry: its observations, else the error-code page."""
    ids = evidence_in(entry)
    return cite(ids) if ids else "docs: the error-code page [err]"
