"""The model catalog: valid data, every model of API_NOTES, and the two profiles differ exactly where the docs do."""

from __future__ import annotations

import re

import dashscope_schemas as ds
import pytest
from dashscope_schemas import _loader
from dashscope_schemas.catalog import resolved_entries
from jsonschema import Draft202012Validator

# Every model API_NOTES names (its catalog table), dated snapshots included.
API_NOTES_MODELS = {
    "qwen-image-edit-max", "qwen-image-edit-max-2026-01-16",
    "qwen-image-edit-plus", "qwen-image-edit-plus-2025-12-15", "qwen-image-edit-plus-2025-10-30",
    "qwen-image-edit",
    "qwen-image-2.0-pro", "qwen-image-2.0", "qwen-image-2.0-2026-03-03", "qwen-image-2.0-pro-2026-03-03",
    "qwen-image-max", "qwen-image-max-2025-12-30",
    "qwen-image-plus", "qwen-image-plus-2026-01-09", "qwen-image",
    "wan2.5-i2i-preview",
}
# What the 2025-12-13 page does not have (see profiles/2025-12.json for the sources).
ABSENT_IN_2025_12 = {"qwen-image-edit-max", "qwen-image-edit-max-2026-01-16", "qwen-image-edit-plus-2025-12-15"}

CATALOG_SCHEMA = _loader.read_json("catalog.schema.json")


def test_the_expected_models_are_the_ones_the_docs_name(shared_dir):
    notes = (shared_dir / "API_NOTES.md").read_text(encoding="utf-8")
    pages = notes + "".join(p.read_text(encoding="utf-8") for p in (shared_dir / "docs").glob("*.txt"))
    table = notes.split("## Model catalog", 1)[1].split("Rate limits", 1)[0]
    # Every full model name in API_NOTES' catalog table is expected ...
    assert set(re.findall(r"\b(?:qwen-image[a-z0-9.-]*[a-z0-9]|wan2\.5-i2i-preview)\b", table)) <= API_NOTES_MODELS
    # ... and every expected name (the table abbreviates snapshots) is spelled out in the notes or a page.
    assert all(re.search(rf"(?<![\w.-]){re.escape(m)}(?![\w.-])", pages) for m in API_NOTES_MODELS)


@pytest.mark.parametrize("profile", ["current", "2025-12"])
def test_catalog_file_and_resolved_models_validate_against_the_catalog_schema(profile):
    raw = _loader.raw_catalog(profile)
    validator = Draft202012Validator(CATALOG_SCHEMA)
    assert list(validator.iter_errors(raw)) == []
    resolved = Draft202012Validator({"$defs": CATALOG_SCHEMA["$defs"], "$ref": "#/$defs/resolved_model"})
    for name, entry in resolved_entries(raw).items():
        assert list(resolved.iter_errors(entry)) == [], name


def test_catalog_schema_rejects_a_broken_catalog():
    broken = ds.merge_patch(_loader.raw_catalog("current"),
                            {"families": {"qwen-image-edit": {"n": {"min": "1"}}}, "size_rules": {"x": {"kind": "oval", "default": "1*1"}}})
    assert len(list(Draft202012Validator(CATALOG_SCHEMA).iter_errors(broken))) == 2


@pytest.mark.parametrize("profile", ["current", "2025-12"])
def test_catalog_answers_for_every_model_of_api_notes(profile):
    catalog = ds.load_catalog(profile)
    absent = ABSENT_IN_2025_12 if profile == "2025-12" else set()
    for name in API_NOTES_MODELS:
        model = catalog.model(name)
        if name in absent:
            assert model is None
            continue
        assert model is not None, name
        assert model.endpoints and model.regions and model.size_rule.kind
        assert model.n.min <= model.default_n <= model.n.max
        assert {"cn-beijing", "ap-southeast-1", "us-east-1"} == set(model.regions)
    assert set(catalog.models) == API_NOTES_MODELS - absent


def test_catalog_facts_from_the_pages():
    c = ds.load_catalog()
    assert c.model("qwen-image-edit-plus").n == ds.catalog.Range(min=1, max=6, default=1)
    assert c.model("qwen-image-edit").n.max == 1 and "size" not in c.model("qwen-image-edit").parameters
    assert "prompt_extend" not in c.model("qwen-image-edit").parameters
    assert c.model("wan2.5-i2i-preview").n.max == 4 and c.model("wan2.5-i2i-preview").endpoints == ("image2image",)
    assert c.model("qwen-image-max").endpoints == ("multimodal-generation",)
    assert set(c.model("qwen-image").endpoints) == {"multimodal-generation", "text2image", "image-generation"}
    assert c.model("qwen-image-plus").rate_limit == ds.catalog.RateLimit(2, "second", 2)
    assert c.model("qwen-image-edit-max").rate_limit.per == "minute"
    assert c.model("qwen-image-edit-plus").price_per_image["ap-southeast-1"] == 0.03
    assert c.model("qwen-image-edit").price_per_image["ap-southeast-1"] == 0.045
    assert c.model("qwen-image-edit-plus").prompt == ds.catalog.TextLimit(max_chars=800, truncate=True)
    assert c.model("qwen-image-edit-plus").input_images.max_bytes == 10 * 1024 * 1024
    assert c.model("qwen-image-2.0").size_rule.default == "2048*2048"
    assert c.regions["ap-southeast-1"]["base_url"].endswith("/api/v1")


def _flatten(node, prefix=""):
    if isinstance(node, dict) and node:
        out = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: node}


def test_the_two_profiles_differ_exactly_where_the_docs_do():
    cur, old = ds.load_catalog("current"), ds.load_catalog("2025-12")
    assert set(cur.models) - set(old.models) == ABSENT_IN_2025_12
    assert set(old.models) <= set(cur.models)
    changed_models = {}
    for name in old.models:
        a, b = _flatten(cur.models[name].entry), _flatten(old.models[name].entry)
        diff = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        if diff:
            changed_models[name] = diff
    assert changed_models == {name: {"cross_rules"} for name in ("qwen-image-edit-plus", "qwen-image-edit-plus-2025-10-30")}
    assert [r.id for r in old.model("qwen-image-edit-plus").cross_rules] == ["size-only-with-n-1"]
    cur_rules, old_rules = _flatten(cur.raw["size_rules"]), _flatten(old.raw["size_rules"])
    size_diff = {k for k in set(cur_rules) | set(old_rules) if cur_rules.get(k) != old_rules.get(k)}
    assert size_diff == {"qwen-image-fixed.sizes"}
    assert set(cur.size_rules["qwen-image-fixed"].sizes) ^ set(old.size_rules["qwen-image-fixed"].sizes) == {
        "1472*1104", "1104*1472", "1472*1140", "1140*1472"}
    assert cur.endpoints == old.endpoints and cur.regions == old.regions


def test_every_profile_difference_names_its_source():
    for name in ds.profile_names():
        for difference in ds.profile_info(name)["differences"]:
            assert difference["source"] and difference["what"] and difference["path"]
    assert len(ds.profile_info("2025-12")["differences"]) == 4
