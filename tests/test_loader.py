"""The loader: every schema and both catalogs, from the installed package, self-contained."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import dashscope_schemas as ds
import pytest
from helpers import REPO
from jsonschema import Draft202012Validator

MESSAGES = {
    "error", "multimodal-generation.request", "multimodal-generation.response", "multimodal-generation.stream-chunk",
    "image-synthesis.text2image.request", "image-synthesis.image2image.request", "task-created.response",
    "task-query.pending", "task-query.running", "task-query.succeeded", "task-query.failed", "task-query.canceled",
    "task-query.unknown", "task-query.response", "task-cancel.response", "task-list.response", "upload-policy.response",
}


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_message_of_the_issue_has_a_schema():
    assert set(ds.schema_names()) >= MESSAGES


def test_both_profiles_exist_and_current_is_the_default():
    assert set(ds.profile_names()) == {"current", "2025-12"}
    assert ds.DEFAULT_PROFILE == "current"
    assert ds.load_catalog() is ds.load_catalog("current")


@pytest.mark.parametrize("profile", ["current", "2025-12"])
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_schema_is_valid_self_contained_and_names_its_sources(name, profile):
    schema = ds.load_schema(name, profile)
    Draft202012Validator.check_schema(schema)
    assert all(ref.startswith("#") for ref in _refs(schema)), "cross-file refs must be inlined"
    sources = schema["x-sources"]
    assert sources and all(s["page"] and s["date"] for s in sources)


def test_load_schema_returns_a_copy_the_caller_may_change():
    first = ds.load_schema("error")
    first["required"].append("mutated")
    assert "mutated" not in ds.load_schema("error")["required"]


def test_unknown_names_are_errors_that_list_what_exists():
    with pytest.raises(KeyError, match="task-query.succeeded"):
        ds.load_schema("task-query.done")
    with pytest.raises(KeyError, match="2025-12"):
        ds.load_catalog("2024-01")


def test_validate_reports_path_and_reason():
    issues = ds.validate({"request_id": "r", "output": {"task_id": "t", "task_status": "SUCCEEDED",
                                                        "results": [{"url": "https://x/a.png"}, {"orig_prompt": "p"}]},
                          "usage": {"image_count": 1}}, "task-query.response")
    assert [(i.path, i.keyword) for i in issues] == [("output.results[1]", "required")]
    assert "url" in issues[0].reason and str(issues[0]).startswith("output.results[1]: ")


def test_installed_wheel_finds_its_data_from_any_directory(tmp_path):
    """A plain, non-editable install into a fresh target, imported from an unrelated directory."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO)], check=True, cwd=tmp_path)
    script = textwrap.dedent("""
        import json, dashscope_schemas as ds
        out = {"file": ds.__file__, "profiles": {}}
        for p in ds.profile_names():
            out["profiles"][p] = {"schemas": {n: len(ds.load_schema(n, p)) for n in ds.schema_names()},
                                  "models": sorted(ds.load_catalog(p).models)}
        print(json.dumps(out))
    """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + script],
                            check=True, cwd=elsewhere, capture_output=True, text=True)
    found = json.loads(result.stdout)
    assert found["file"].startswith(str(target))
    assert set(found["profiles"]) == {"current", "2025-12"}
    for profile in found["profiles"].values():
        assert set(profile["schemas"]) >= MESSAGES
        assert all(size > 0 for size in profile["schemas"].values())
        assert "qwen-image-plus" in profile["models"] and "wan2.5-i2i-preview" in profile["models"]
    # What the wheel ships: typed packages, every backend module, and no deliberately broken server.
    shipped = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert {"mock_server/py.typed", "dashscope_schemas/py.typed", "contract_tests/py.typed"} <= shipped
    assert {"mock_server/backend/generation.py", "mock_server/backend/tasks.py", "mock_server/backend/files.py"} <= shipped
    assert not [p for p in shipped if "mutant" in p]
