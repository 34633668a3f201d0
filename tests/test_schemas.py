"""Each schema accepts its valid example and rejects each hand-written broken one, at the right place."""

from __future__ import annotations

import dashscope_schemas as ds
import pytest
from helpers import FIXTURES, load_json

CASES = sorted((FIXTURES / "invalid").glob("*.json"))


def test_every_message_schema_has_broken_examples():
    covered = {load_json(p)["schema"] for p in CASES}
    assert covered == set(ds.schema_names()) - {"common"}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_valid_example_passes(path):
    doc = load_json(path)
    assert ds.validate(doc["valid"], doc["schema"]) == []


def _invalid_cases():
    for path in CASES:
        doc = load_json(path)
        for case in doc["invalid"]:
            yield pytest.param(doc["schema"], doc["valid"], case, id=f"{path.stem}: {case['why']}")


@pytest.mark.parametrize("schema, valid, case", list(_invalid_cases()))
@pytest.mark.parametrize("profile", ["current", "2025-12"])
def test_broken_example_is_rejected_where_it_is_broken(schema, valid, case, profile):
    broken = ds.merge_patch(valid, case["patch"])
    issues = ds.validate(broken, schema, profile)
    assert issues, f"accepted: {case['why']}"
    assert case["path"] in {i.path for i in issues}, [str(i) for i in issues]
