"""The dashboard (GET / in a browser), tested in a real one: Debian's Chromium, headless, driven by
Playwright against `dashscope-mock serve` on loopback. Tasks and calls are made through the API,
time moves by the fake's clock, and what the page shows is compared with what the API answers.

One browser and one fake for the module; every test makes the tasks and scenarios it looks at
(and finishes its tasks), so the tests hold in any order. Screenshots go to $DASHBOARD_SCREENSHOTS
(or a temporary directory), named after the test; the run prints where.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import ASYNC, PATHS, assert_error, edit_body, serving_process, t2i_body, wan_body

from mock_server.accounts import mask_key
from mock_server.backend.tasks import format_time

CHROMIUM = Path(os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium"))
# Headless, and nothing the browser would fetch on its own (updates, sync, QUIC probes): the
# machine may have no internet, and the page needs none.
LAUNCH_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REGIONS = ("cn-beijing", "ap-southeast-1", "us-east-1")
FINISH = 300  # seconds of fake time: past every model's default PENDING + RUNNING


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser(chromium: Path, ci: bool) -> None:
    """Skip without Chromium or Playwright here; in CI (CI=true) fail, saying what is missing:
    the dashboard's tests must not pass there by not running."""
    missing = []
    if not chromium.is_file():
        missing.append(f"Chromium is not at {chromium} (apt-get install chromium; .ci/run does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright is not installed (pip install '.[test]')")
    if not missing:
        return
    reason = "; ".join(missing)
    if ci:
        pytest.fail(f"the dashboard tests need a real browser in CI: {reason}", pytrace=False)
    pytest.skip(reason)


# --- the fake, the browser, the API ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shots(request, tmp_path_factory) -> Path:
    given = os.environ.get("DASHBOARD_SCREENSHOTS")
    directory = Path(given) if given else tmp_path_factory.mktemp("dashboard-screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\ndashboard screenshots: {directory}")
    return directory


@pytest.fixture(scope="module")
def browser():
    require_browser(CHROMIUM, in_ci())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Iterator[str]:
    """The installed `dashscope-mock serve` (the wheel's page, style and script), rate limits off,
    its clock frozen: tasks move only when a test moves the clock."""
    script = shutil.which("dashscope-mock", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "mock_server.cli"]
    with serving_process([*command, "serve", "--no-rate-limits"], tmp_path_factory.mktemp("fake") / "fake.log") as origin:
        httpx.post(f"{origin}/__admin/clock/freeze", timeout=10).raise_for_status()
        yield origin


@pytest.fixture(scope="module")
def api(fake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake, timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def keys(api) -> dict[tuple[str, str], str]:
    """The first demo key of each (account, region), from GET /__admin/keys."""
    found: dict[tuple[str, str], str] = {}
    for key in api.get("/__admin/keys").json()["keys"]:
        found.setdefault((key["account"], key["region"]), key["key"])
    return found


@pytest.fixture
def page(browser, request, shots):
    """A fresh page (its own context: cookies, clipboard permission), saved as a screenshot when
    the test ends; `page.console_errors` collects what the browser complained about (a CSP refusal
    of the page's own style or script would show there)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.console_errors = []
    tab.on("console", lambda message: tab.console_errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: tab.console_errors.append(str(error)))
    yield tab
    if tab.url.startswith("http"):
        tab.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    context.close()


def create(api, keys, body, endpoint="text2image", account="demo-account-a", region="cn-beijing", **headers) -> str:
    response = api.post(f"/{region}/api/v1{PATHS[endpoint]}", json=body,
                        headers={"Authorization": f"Bearer {keys[(account, region)]}", **ASYNC, **headers})
    assert response.status_code == 200, response.text
    return response.json()["output"]["task_id"]


def query(api, keys, task_id, account="demo-account-a", region="cn-beijing") -> dict:
    response = api.get(f"/{region}/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {keys[(account, region)]}"})
    assert response.status_code == 200, response.text
    return response.json()["output"]


def advance(api, seconds: float = FINISH) -> dict:
    response = api.post("/__admin/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return response.json()


def add_scenario(api, scenario: dict) -> dict:
    response = api.post("/__admin/scenarios", json=scenario)
    assert response.status_code == 200, response.text
    return response.json()


def marker() -> str:
    """A word no other test's prompt has: a scenario matching it acts on this test's request only."""
    return f"m{uuid.uuid4().hex[:10]}"


def images_loaded(page, selector: str) -> list[int]:
    """The natural widths of the images `selector` finds, once each has loaded (or failed)."""
    page.wait_for_function("s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector)
    return page.eval_on_selector_all(selector, "images => images.map(i => i.naturalWidth)")


def task_row(page, task_id: str):
    return page.locator(f"tr.task[data-task-id='{task_id}']")


# --- the tests ------------------------------------------------------------------------------------


def test_the_page_shows_the_base_urls_and_a_finished_task_with_its_result_images(fake, api, keys, page):
    from playwright.sync_api import expect

    task_id = create(api, keys, wan_body(prompt="a reading lamp by the window", n=2), endpoint="image2image")
    advance(api)
    output = query(api, keys, task_id)
    assert output["task_status"] == "SUCCEEDED" and len(output["results"]) == 2

    page.goto(f"{fake}/")
    for region in REGIONS:
        expect(page.locator(f"tr[data-region='{region}'] code.base-url")).to_have_text(f"{fake}/{region}/api/v1")
    row = task_row(page, task_id)
    expect(row.locator(".status")).to_have_text("SUCCEEDED")
    expect(row.locator(".model")).to_have_text("wan2.5-i2i-preview")
    expect(row.locator(".prompt")).to_have_text("a reading lamp by the window")
    expect(row.locator("dl.times")).to_contain_text(output["submit_time"])
    expect(row.locator("dl.times")).to_contain_text(output["scheduled_time"])
    expect(row.locator("dl.times")).to_contain_text(output["end_time"])
    expect(row.locator(".timeline .phase")).to_have_text(["PENDING 1 s", "RUNNING 50 s", "SUCCEEDED"])
    expect(row.locator(".metrics")).to_have_text("TOTAL 2 · SUCCEEDED 2 · FAILED 0")
    # The thumbnails are the signed URLs the API gave, and the browser loaded them from the fake.
    thumbs = row.locator("img.thumb")
    assert [thumbs.nth(i).get_attribute("src") for i in range(2)] == [r["url"] for r in output["results"]]
    widths = images_loaded(page, f"tr.task[data-task-id='{task_id}'] img.thumb")
    assert len(widths) == 2 and all(w > 0 for w in widths)
    assert page.console_errors == []


def test_a_sync_call_from_the_journal_shows_its_images(fake, api, keys, page):
    from playwright.sync_api import expect

    prompt = f"turn the sofa green {marker()}"
    response = api.post(f"/cn-beijing/api/v1{PATHS['multimodal-generation']}", json=edit_body(text=prompt, n=2),
                        headers={"Authorization": f"Bearer {keys[('demo-account-a', 'cn-beijing')]}"})
    assert response.status_code == 200, response.text
    urls = [part["image"] for part in response.json()["output"]["choices"][0]["message"]["content"]]

    page.goto(f"{fake}/#sync")
    row = page.locator(f"tr.sync-call[data-request-id='{response.json()['request_id']}']")
    expect(row.locator(".model")).to_have_text("qwen-image-edit-plus")
    expect(row.locator(".prompt")).to_have_text(prompt)
    expect(row.locator(".status")).to_have_text("200")
    thumbs = row.locator("img.thumb")
    assert [thumbs.nth(i).get_attribute("src") for i in range(thumbs.count())] == urls
    widths = images_loaded(page, f"tr.sync-call[data-request-id='{response.json()['request_id']}'] img.thumb")
    assert len(widths) == 2 and all(w > 0 for w in widths)
    # And the sync call's images are on the bill.
    usage = page.locator("tr.usage[data-account='demo-account-a'][data-model='qwen-image-edit-plus'] .images")
    expect(usage).not_to_have_text("0")


def test_a_failed_task_shows_its_code_and_message(fake, api, keys, page):
    from playwright.sync_api import expect

    word = marker()
    scenario = add_scenario(api, {"match": {"prompt_contains": word}, "effect": {"type": "task_failed", "error": "data_inspection_failed"},
                                  "times": 1})
    try:
        task_id = create(api, keys, t2i_body(prompt=f"a harbour at night {word}"))
    finally:
        api.delete(f"/__admin/scenarios/{scenario['id']}")
    advance(api)
    output = query(api, keys, task_id)
    assert output["task_status"] == "FAILED"

    page.goto(f"{fake}/?status=FAILED")
    row = task_row(page, task_id)
    expect(row.locator(".status")).to_have_text("FAILED")
    expect(row.locator(".failure .code")).to_have_text(output["code"])
    expect(row.locator(".failure .message")).to_have_text(output["message"])
    expect(row.locator(".metrics")).to_have_text("TOTAL 1 · SUCCEEDED 0 · FAILED 1")
    expect(row.locator("img")).to_have_count(0)


def test_a_partly_failed_task_shows_its_image_and_the_failed_image_s_code(fake, api, keys, page):
    from playwright.sync_api import expect

    word = marker()
    scenario = add_scenario(api, {"match": {"prompt_contains": word}, "effect": {"type": "partial_failure", "failed": 1}, "times": 1})
    try:
        task_id = create(api, keys, wan_body(prompt=f"two views of a garden {word}", n=2), endpoint="image2image")
    finally:
        api.delete(f"/__admin/scenarios/{scenario['id']}")
    advance(api)
    made, failed = query(api, keys, task_id)["results"]

    page.goto(f"{fake}/")
    row = task_row(page, task_id)
    expect(row.locator(".status")).to_have_text("SUCCEEDED")
    expect(row.locator("img.thumb")).to_have_attribute("src", made["url"])
    expect(row.locator(".results .failure")).to_have_text(f"image 2: {failed['code']} {failed['message']}")
    expect(row.locator(".metrics")).to_have_text("TOTAL 2 · SUCCEEDED 1 · FAILED 1")


def test_keys_are_masked_unless_asked_and_copy_gives_the_whole_key(fake, api, page):
    from playwright.sync_api import expect

    every_key = api.get("/__admin/keys").json()["keys"]
    page.goto(f"{fake}/")
    html = page.content()
    assert not [k["key"] for k in every_key if k["key"] in html]  # not even in the page's source
    beijing = page.locator("tr[data-region='cn-beijing'] ul.keys li")
    expect(beijing).to_have_count(sum(k["region"] == "cn-beijing" for k in every_key))
    first = next(k for k in every_key if k["region"] == "cn-beijing")
    item = beijing.filter(has_text=first["key_id"])
    expect(item.locator("code.key")).to_have_text(mask_key(first["key"]))
    item.locator("button.copy").click()
    expect(item.locator("button.copy")).to_have_text("copied")
    assert page.evaluate("navigator.clipboard.readText()") == first["key"]

    page.get_by_text("show the keys in full").click()
    expect(item.locator("code.key")).to_have_text(first["key"])
    assert all(k["key"] in page.content() for k in every_key)


def test_a_scenario_added_with_the_form_is_listed_and_removed_with_its_button(fake, api, page):
    from playwright.sync_api import expect

    page.goto(f"{fake}/#scenarios")
    form = page.locator("#scenario-form")
    # Each effect's own fields, from its schema: reject's error is a choice of the catalog's errors.
    form.locator("select[name='effect.type']").select_option("reject")
    expect(form.locator("[data-effect='reject'] select[name='effect.error'] option[value='service_unavailable']")).to_have_count(1)
    expect(form.locator("[data-effect='latency']")).to_be_hidden()
    # What the schema refuses, the page says (reject needs an error, or status, code and message).
    form.locator("[data-effect='reject'] input[name='effect.code']").fill("Throttled")
    form.get_by_role("button", name="Add scenario").click()
    expect(form.locator(".error")).to_contain_text("reject takes an error")

    name = f"beijing down {marker()}"
    form.locator("input[name='name']").fill(name)
    form.locator("input[name='times']").fill("2")
    form.locator("input[name='only_when_chosen']").check()  # acts on no other test's requests
    form.locator("select[name='match.endpoint']").select_option("text2image")
    form.locator("select[name='match.region']").select_option("cn-beijing")
    form.locator("[data-effect='reject'] input[name='effect.code']").fill("")
    form.locator("[data-effect='reject'] select[name='effect.error']").select_option("service_unavailable")
    form.get_by_role("button", name="Add scenario").click()

    row = page.locator("tr.scenario").filter(has_text=name)
    expect(row).to_have_count(1)
    expect(row.locator(".applied")).to_have_text("0")
    expect(row.locator(".remaining")).to_have_text("2")
    listed = [s for s in api.get("/__admin/scenarios").json()["scenarios"] if s.get("name") == name]
    assert len(listed) == 1
    assert listed[0] == {**listed[0], "match": {"endpoint": "text2image", "region": "cn-beijing"},
                         "effect": {"type": "reject", "error": "service_unavailable"}, "remaining": 2, "applied": 0,
                         "only_when_chosen": True}

    row.get_by_role("button", name="Remove").click()
    expect(page.locator("tr.scenario").filter(has_text=name)).to_have_count(0)
    assert not [s for s in api.get("/__admin/scenarios").json()["scenarios"] if s.get("name") == name]


def test_the_clock_buttons_move_freeze_and_run_the_fake_clock(fake, api, page):
    from playwright.sync_api import expect

    before = api.get("/__admin/clock").json()
    assert before["frozen"] is True
    page.goto(f"{fake}/#clock")
    expect(page.locator("#clock-now")).to_have_text(before["service_time"])
    page.get_by_role("button", name="+1 h", exact=True).click()
    expect(page.locator("#clock-now")).to_have_text(format_time(before["now"] + 3600))
    assert api.get("/__admin/clock").json() == {**before, "now": before["now"] + 3600, "service_time": format_time(before["now"] + 3600)}
    page.get_by_role("button", name="+1 min", exact=True).click()
    expect(page.locator("#clock-now")).to_have_text(format_time(before["now"] + 3660))

    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#clock-state")).to_have_text("running at wall speed")
    assert api.get("/__admin/clock").json()["frozen"] is False
    page.get_by_role("button", name="Freeze", exact=True).click()
    expect(page.locator("#clock-state")).to_have_text("frozen")
    assert api.get("/__admin/clock").json()["frozen"] is True


def test_the_page_refreshes_itself_while_tasks_run(fake, api, keys, page):
    from playwright.sync_api import expect

    task_id = create(api, keys, t2i_body(prompt="a kettle on a stove"))
    page.goto(f"{fake}/")
    row = task_row(page, task_id)
    expect(row.locator(".status")).to_have_text("PENDING")
    expect(page.locator("body")).to_have_attribute("data-refresh-ms", "2000")
    advance(api, 5)  # RUNNING: the page finds out by itself
    expect(row.locator(".status")).to_have_text("RUNNING")
    expect(row.locator(".metrics")).to_have_text("TOTAL 1 · SUCCEEDED 0 · FAILED 0")
    advance(api)
    expect(row.locator(".status")).to_have_text("SUCCEEDED")
    expect(row.locator("img.thumb")).to_have_count(1)
    # Nothing runs any more: no more reloads.
    expect(page.locator("body")).not_to_have_attribute("data-refresh-ms", "2000")
    expect(page.locator("#refresh-note")).to_have_text("No task is running: no auto-refresh.")


def test_filters_and_pages_show_one_page_of_the_matching_tasks(fake, api, keys, page):
    from playwright.sync_api import expect

    account, region = "demo-account-b", "us-east-1"  # no other test makes tasks there
    made = [create(api, keys, t2i_body(model="qwen-image", prompt=f"still life {n}"), account=account, region=region) for n in range(3)]
    advance(api)

    page.goto(f"{fake}/?account={account}&region={region}&page_size=2")
    expect(page.locator(".pager")).to_contain_text("3 task(s) · page 1 of 2")
    expect(page.locator("tr.task")).to_have_count(2)
    assert [page.locator("tr.task").nth(i).get_attribute("data-task-id") for i in range(2)] == made[:0:-1]  # newest first
    page.get_by_role("link", name="older →").click()
    expect(page.locator(".pager")).to_contain_text("page 2 of 2")
    expect(page.locator("tr.task")).to_have_count(1)
    assert page.locator("tr.task").get_attribute("data-task-id") == made[0]
    # Choosing a filter applies it (and starts again at page 1).
    page.locator("form.filters select[name='status']").select_option("FAILED")
    page.wait_for_url("**status=FAILED**")
    assert "account=demo-account-b" in page.url and "page=" not in page.url
    expect(page.locator("#tasks .empty")).to_have_text("No tasks here.")


def test_what_callers_wrote_is_shown_as_text_never_run(fake, api, keys, page):
    from playwright.sync_api import expect

    prompt = '<script>window.__xss = 1</script><img src="x" onerror="window.__xss = 2"> a "quoted" cat & dog'
    task_id = create(api, keys, t2i_body(prompt=prompt))
    advance(api)
    name = "<b onmouseover=alert(1)>bold</b>"
    scenario = add_scenario(api, {"name": name, "match": {"prompt_contains": "</td><script>"}, "effect": {"type": "drop_connection"},
                                  "only_when_chosen": True})
    try:
        page.goto(f"{fake}/")
        expect(task_row(page, task_id).locator(".prompt")).to_have_text(prompt)
        row = page.locator(f"tr.scenario[data-scenario-id='{scenario['id']}']")
        expect(row.locator(".name")).to_have_text(name)
        expect(row).to_contain_text("prompt_contains=</td><script>")
        assert page.evaluate("window.__xss") is None
        assert page.locator("script").count() == 1 and page.locator("b[onmouseover]").count() == 0
        assert page.locator("img[src='x']").count() == 0
        assert page.console_errors == []
    finally:
        api.delete(f"/__admin/scenarios/{scenario['id']}")


@pytest.mark.parametrize("query", ["status=DONE", "page=0", "page=abc", "page=99999999", "page_size=1000", "model=gpt-image",
                                   "account=nobody", "region=cn-shanghai", "show_keys=yes", "page=%EF%BC%91"])
def test_a_bad_address_is_a_400_in_the_dashscope_envelope(api, query):
    name = query.split("=")[0]
    body = assert_error(api.get(f"/?{query}"), 400, "InvalidParameter")
    assert body["message"].startswith(f"{name}: ")


def test_json_callers_still_get_the_front_document(api, fake):
    data = api.get("/", headers={"Accept": "application/json"}).json()
    assert data["regions"]["cn-beijing"]["base_url"] == f"{fake}/cn-beijing/api/v1"
    assert api.get("/").headers["content-security-policy"].startswith("default-src 'none'; script-src 'nonce-")


def test_the_whole_page_with_every_panel_in_use(fake, api, keys, page, shots):
    """What the README shows (docs/dashboard.png is this test's screenshot): finished tasks with
    their images, a failed one, a sync call, a live scenario, the bill."""
    from playwright.sync_api import expect

    word = "night market"  # no other test's prompt says it
    failing = add_scenario(api, {"name": "moderation trips", "match": {"prompt_contains": word},
                                 "effect": {"type": "output_moderation"}, "times": 1})
    live = add_scenario(api, {"name": "slow Singapore", "match": {"region": "ap-southeast-1"},
                              "effect": {"type": "latency", "running_seconds": 30}, "only_when_chosen": True})
    try:
        made = [create(api, keys, t2i_body(prompt="a lighthouse on a cliff at dawn, oil painting")),
                create(api, keys, wan_body(prompt="put a red vase on the table", n=2), endpoint="image2image"),
                create(api, keys, t2i_body(model="qwen-image", prompt="a crowded night market"), account="demo-account-b"),
                create(api, keys, t2i_body(prompt="a paper boat on a pond"), region="ap-southeast-1")]
        sync = api.post(f"/cn-beijing/api/v1{PATHS['multimodal-generation']}", json=edit_body(text="make the sky stormy", n=2),
                        headers={"Authorization": f"Bearer {keys[('demo-account-a', 'cn-beijing')]}"})
        assert sync.status_code == 200, sync.text
        advance(api)
        page.goto(f"{fake}/")
        for task_id in made:
            expect(task_row(page, task_id)).to_have_count(1)
        expect(task_row(page, made[2]).locator(".status")).to_have_text("FAILED")
        expect(page.locator(f"tr.scenario[data-scenario-id='{live['id']}']")).to_have_count(1)
        expect(page.locator("tr.usage")).not_to_have_count(0)
        assert all(width > 0 for width in images_loaded(page, "img.thumb"))
        page.screenshot(path=str(shots / "dashboard-top.png"))
    finally:
        for scenario in (failing, live):
            api.delete(f"/__admin/scenarios/{scenario['id']}")


def test_without_a_browser_ci_fails_and_elsewhere_skips(tmp_path):
    nowhere = tmp_path / "chromium"
    with pytest.raises(pytest.fail.Exception, match="need a real browser in CI: Chromium is not at"):
        require_browser(nowhere, ci=True)
    with pytest.raises(pytest.skip.Exception, match="Chromium is not at"):
        require_browser(nowhere, ci=False)
