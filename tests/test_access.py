"""Who may control the fake: /__admin answers this machine, or the admin token's holders; the faked
API answers everybody; result and upload URLs are signed with a secret of this instance."""

from __future__ import annotations

import httpx
import pytest
from helpers import ASYNC, PATHS, AppClient, auth, make_service, serving

from mock_server.access import is_loopback
from mock_server.app import create_app
from mock_server.cli import banner
from mock_server.config import Config
from mock_server.service import FakeDashScope

API = "/cn-beijing/api/v1"
ADMIN_CALLS = [("GET", "/__admin/keys", None), ("GET", "/__admin/clock", None), ("POST", "/__admin/reset", None),
               ("POST", "/__admin/clock/advance", {"seconds": 3600}), ("GET", "/__admin/scenarios", None),
               ("POST", "/__admin/scenarios", {"effect": {"type": "unavailable"}}), ("DELETE", "/__admin/scenarios", None),
               ("GET", "/__admin/usage", None), ("GET", "/__admin/regions", None),
               ("POST", "/__admin/usage/free-tier-only", {"account": "demo-account-a", "enabled": True}),
               ("GET", "/cn-beijing/__admin/keys", None), ("GET", "/__admin/nothing-here", None),
               ("GET", "/__admin/requests", None), ("DELETE", "/__admin/requests", None), ("GET", "/__admin/health", None),
               ("POST", "/__admin/clock/freeze", None), ("POST", "/__admin/clock/unfreeze", None), ("GET", "/", None),
               ("GET", "/cn-beijing/", None)]


def client_from(host: str, service: FakeDashScope) -> AppClient:
    """The app as a caller at `host` reaches it (the ASGI scope's client address)."""
    return AppClient(create_app(service=service), caller=host)


@pytest.mark.parametrize("host", ["192.0.2.7", "10.1.2.3", "2001:db8::1", "::ffff:192.0.2.7", "0.0.0.0", "testclient"])
def test_a_caller_from_elsewhere_is_refused_every_control_route_and_nothing_changes(host):
    service = make_service()
    service.clock.advance(0)
    remote = client_from(host, service)
    created = remote.post(API + PATHS["text2image"], headers=auth(**ASYNC),
                          json={"model": "qwen-image-plus", "input": {"prompt": "a cat"}})
    assert created.status_code == 200  # the faked API itself answers anybody
    before = (service.clock.now(), service.store.counts(), len(service.scenarios.all()), set(service.ledger.free_tier_only))
    for method, path, body in ADMIN_CALLS:
        response = remote.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        answer = response.json()
        assert answer["code"] == "AccessDenied" and set(answer) == {"request_id", "code", "message"}
        assert "sk-" not in response.text
    assert (service.clock.now(), service.store.counts(), len(service.scenarios.all()), set(service.ledger.free_tier_only)) == before
    remote.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "localhost"])
def test_loopback_callers_may_use_the_control_api(host):
    local = client_from(host, make_service())
    assert local.get("/__admin/keys").status_code == 200
    assert local.post("/__admin/clock/advance", json={"seconds": 1}).status_code == 200
    local.close()


def test_the_admin_token_opens_the_control_api_to_its_holders_only():
    service = FakeDashScope(Config.load(admin_token="s3cret-token", rate_limits={"enabled": False}))
    remote = client_from("192.0.2.7", service)
    assert remote.get("/__admin/keys", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    for wrong in ("Bearer s3cret-tokeN", "Bearer ", "s3cret-token", "Basic s3cret-token", "Bearer s3cret-token-and-more",
                  "Bearer ключ".encode()):
        assert remote.get("/__admin/keys", headers={"Authorization": wrong}).status_code == 403, wrong
    assert remote.get("/__admin/keys").status_code == 403
    remote.close()


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.255.0.1", "::1", "::ffff:127.0.0.1", "localhost", "LOCALHOST", None]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.2", "192.0.2.2", "fd00::2", "example.com", "", "::ffff:10.0.0.1"]))


def test_bound_to_all_addresses_a_loopback_caller_still_controls_it():
    """Through a real socket: the gate reads the peer address uvicorn saw. (Calls from another
    address of this machine are not made here: the kit's tests use loopback only.)"""
    with serving(create_app(service=make_service()), "0.0.0.0") as port:
        assert httpx.get(f"http://127.0.0.1:{port}/__admin/clock").status_code == 200
        forwarded = httpx.get(f"http://127.0.0.1:{port}/__admin/clock", headers={"X-Forwarded-For": "192.0.2.7"})
        # uvicorn believes X-Forwarded-For from a loopback proxy: a remote caller behind it is remote.
        assert forwarded.status_code == 403


def test_the_banner_warns_when_the_fake_listens_beyond_loopback():
    service = FakeDashScope(Config.load())
    assert "WARNING" not in banner(service, "http://127.0.0.1:8089", False, "127.0.0.1")
    assert "WARNING" not in banner(service, "http://localhost:8089", False, "localhost")
    for host in ("0.0.0.0", "::", "192.0.2.2"):
        text = banner(service, f"http://{host}:8089", False, host)
        assert "WARNING" in text and "not loopback" in text and "this machine only" in text
    opened = banner(FakeDashScope(Config.load(admin_token="t")), "http://0.0.0.0:8089", False, "0.0.0.0")
    assert "admin token" in opened and "this machine only" not in opened


def _result_url(service: FakeDashScope) -> str:
    client = AppClient(create_app(service=service))
    body = {"model": "qwen-image-edit-plus", "input": {"messages": [{"role": "user", "content": [
        {"image": "https://e.com/a.png"}, {"text": "x"}]}]}}
    url = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).json()["output"]["choices"][0][
        "message"]["content"][0]["image"]
    client.close()
    return url.removeprefix("http://testserver")


def test_each_instance_signs_with_its_own_random_secret_unless_one_is_configured():
    assert Config.load().signing_secret != Config.load().signing_secret
    assert "secret" not in Config.load().signing_secret  # nothing shipped in the package
    one, other = make_service(), make_service()
    url = _result_url(one)
    assert _download(one, url).status_code == 200
    refused = _download(other, url)
    assert refused.status_code == 403 and b"SignatureDoesNotMatch" in refused.content
    shared_a, shared_b = make_service(signing_secret="configured"), make_service(signing_secret="configured")
    url = _result_url(shared_a)
    shared_b.store.put_image(shared_a.store.get_image(url.split("/")[-1].split(".png")[0]))
    assert _download(shared_b, url).status_code == 200  # same secret: same signatures


def _download(service: FakeDashScope, url: str) -> httpx.Response:
    client = AppClient(create_app(service=service))
    try:
        return client.get(url)
    finally:
        client.close()


def test_the_contract_suite_reaches_a_remote_fakes_admin_api_with_its_token():
    from contract_tests.targets import Admin

    app = create_app(service=FakeDashScope(Config.load(admin_token="team-token", rate_limits={"enabled": False})))

    async def from_elsewhere(scope, receive, send):  # every caller looks like another machine
        await app({**scope, "client": ("192.0.2.9", 40000)}, receive, send)

    with serving(from_elsewhere) as port:
        origin = f"http://127.0.0.1:{port}"
        assert Admin.probe(origin) is None  # without the token it is "no admin API"
        admin = Admin.probe(origin, "team-token")
        assert admin is not None and admin.keys() and admin.advance(5) > 0
        admin.close()
