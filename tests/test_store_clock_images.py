"""The store (O(1) lookups, listing by owner, expiry), the controllable clock, and images."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mock_server import images
from mock_server.clock import ControllableClock
from mock_server.domain import tasks as t
from mock_server.store import ImageRecord, MemoryStore, TaskQuery


def task(task_id: str, submit: float, account="a", region="cn-beijing") -> t.Task:
    return t.create(t.Task(task_id=task_id, account=account, region=region, api_key_id="k", model="m", endpoint="e",
                           orig_prompt="p", prompt_extend=False, seed=1, width=1, height=1, timing=t.Timing("time", 0, 0),
                           outcomes=(t.ImageOutcome("i"),)), submit)


def test_store_create_get_update_list_expire():
    store = MemoryStore(task_ttl=100)
    for i, owner in enumerate(["a", "a", "b"]):
        store.create(task(f"t{i}", submit=i, account=owner))
    assert store.get("t1").account == "a" and store.get("nope") is None
    page, total = store.query(TaskQuery("a", "cn-beijing"), 0, 10)
    assert [x.task_id for x in page] == ["t1", "t0"] and total == 2  # newest first
    assert store.query(TaskQuery("a", "us-east-1"), 0, 10) == ([], 0)
    store.update(t.observe(store.get("t0"), 5))
    assert store.get("t0").status == t.SUCCEEDED
    with pytest.raises(KeyError):
        store.create(task("t0", 9))
    with pytest.raises(KeyError):
        store.update(task("ghost", 9))
    assert store.expire(100.5) == 1 and store.get("t0") is None and store.get("t1") is not None
    assert [x.task_id for x in store.query(TaskQuery("a", "cn-beijing"), 0, 10)[0]] == ["t1"]
    store.put_image(ImageRecord("img", "p", 1, 0, 2, 2, expires=150))
    assert store.get_image("img") is not None
    store.expire(150)
    assert store.get_image("img") is None
    store.clear()
    assert store.get("t2") is None


def test_clock_follows_wall_time_until_advanced_then_freezes():
    wall = [1000.0]
    clock = ControllableClock(lambda: wall[0])
    wall[0] = 1005.0
    assert clock.now() == 1005.0 and not clock.frozen
    clock.advance(60)
    wall[0] = 2000.0
    assert clock.now() == 1065.0 and clock.frozen
    clock.advance(0.5)
    assert clock.now() == 1065.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.reset()
    assert clock.now() == 2000.0 and not clock.frozen


def test_png_is_deterministic_in_prompt_seed_and_index_and_exactly_sized():
    a = images.render_png("a cat", 7, 0, 640, 480)
    assert a == images.render_png("a cat", 7, 0, 640, 480)
    assert a != images.render_png("a cat", 8, 0, 640, 480)
    assert a != images.render_png("a cat", 7, 1, 640, 480)
    assert a != images.render_png("a dog", 7, 0, 640, 480)
    with Image.open(io.BytesIO(a)) as img:
        assert (img.format, img.size, img.mode) == ("PNG", (640, 480), "RGB")
        img.load()  # every row decodes (the fake writes its own unfiltered PNG)
        assert img.getpixel((639, 479)) is not None and len(img.getcolors(maxcolors=1 << 16) or ()) > 2


def test_read_image_and_sizes_announced_by_urls():
    buf = io.BytesIO()
    Image.new("RGB", (300, 200)).save(buf, format="WEBP")
    assert images.read_image(buf.getvalue()) == ("webp", 300, 200)
    with pytest.raises(images.InvalidImage):
        images.read_image(b"\x89PNG\r\n\x1a\nnot really")
    assert images.size_from_url("https://img.alicdn.com/x/O1CN01_!!600-49-tps-1104-1472.webp") == (1104, 1472)
    assert images.size_from_url("https://e.com/photo_1920x1080.png?v=2") == (1920, 1080)
    assert images.size_from_url("https://e.com/a.png") is None


def test_signed_urls_expire_and_reject_tampering():
    signer = images.UrlSigner(b"secret")
    query = dict(p.split("=", 1) for p in signer.query("results/x.png", 2000).split("&"))
    from urllib.parse import unquote
    sig = unquote(query["Signature"])
    assert signer.check("results/x.png", "2000", query["OSSAccessKeyId"], sig, now=1999) is None
    assert signer.check("results/x.png", "2000", query["OSSAccessKeyId"], sig, now=2000)[0] == "AccessDenied"
    assert signer.check("results/y.png", "2000", query["OSSAccessKeyId"], sig, now=1)[0] == "SignatureDoesNotMatch"
    assert signer.check("results/x.png", "2001", query["OSSAccessKeyId"], sig, now=1)[0] == "SignatureDoesNotMatch"
    assert signer.check("results/x.png", "2000", "LTAIother", sig, now=1)[0] == "InvalidAccessKeyId"
    assert signer.check("results/x.png", None, None, None, now=1)[0] == "AccessDenied"
    assert b"<Code>SignatureDoesNotMatch</Code>" in images.oss_error_xml("SignatureDoesNotMatch", "m", "r", "h")
