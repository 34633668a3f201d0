"""Size rules: the doc's rounding example, defaults from the last input's aspect, and properties."""

from __future__ import annotations

import dashscope_schemas as ds
from hypothesis import given
from hypothesis import strategies as st

CATALOG = ds.load_catalog()
EDIT = CATALOG.size_rules["edit-per-side"]
WAN = CATALOG.size_rules["wan25-total-pixels"]
QWEN2 = CATALOG.size_rules["qwen-image-2-total-pixels"]
FIXED = CATALOG.size_rules["qwen-image-fixed"]


def test_the_docs_rounding_example():
    assert ds.output_size(EDIT, (1033, 1032), None) == (1040, 1024)


def test_parse_and_format():
    assert ds.parse_size("1024*1536") == (1024, 1536)
    assert ds.parse_size("1024x1536") is None and ds.parse_size(1024) is None and ds.parse_size("0*5") is None
    assert ds.format_size((928, 1664)) == "928*1664"


def test_defaults():
    assert ds.output_size(FIXED, None, None) == (1664, 928)
    assert ds.output_size(QWEN2, None, (3000, 1000)) == (2048, 2048)
    assert ds.output_size(EDIT, None, None) == (1024, 1024)
    assert ds.output_size(EDIT, None, (1536, 1024)) == (1248, 832)  # 3:2 at about 1024*1024
    assert ds.output_size(WAN, None, None) == (1280, 1280)


def test_violations_name_the_rule():
    assert "between 512 and 2048" in ds.size_violation(EDIT, (511, 1000))
    assert "one of" in ds.size_violation(FIXED, (1024, 1024))
    assert "aspect" in ds.size_violation(WAN, (2048, 480))
    assert ds.size_violation(WAN, (640, 2560)) is None


@given(st.integers(512, 2048), st.integers(512, 2048))
def test_explicit_sizes_round_to_the_nearest_multiple_of_16(w, h):
    out_w, out_h = ds.output_size(EDIT, (w, h), None)
    assert out_w % 16 == 0 and out_h % 16 == 0
    assert abs(out_w - w) <= 8 and abs(out_h - h) <= 8


@given(st.integers(1, 6000), st.integers(1, 6000))
def test_default_follows_the_last_input_and_stays_within_the_rule(w, h):
    out = ds.output_size(EDIT, None, (w, h))
    assert out[0] % 16 == 0 and out[1] % 16 == 0
    assert ds.size_violation(EDIT, out) is None
    if 0.5 <= w / h <= 2:  # where no side is clamped, the area is about 1024*1024 and the aspect kept
        assert abs(out[0] * out[1] - 1024 * 1024) / (1024 * 1024) < 0.05
        assert abs(out[0] / out[1] - w / h) / (w / h) < 0.05


@given(st.integers(1, 8000), st.integers(1, 8000))
def test_wan_default_obeys_its_total_pixel_and_aspect_rule(w, h):
    out = ds.output_size(WAN, None, (w, h))
    assert ds.size_violation(WAN, out) is None
