"""preview.html in a real browser: headless Chromium (Playwright) opens the page a dry run wrote
from a `file://` URL with the network blocked and checks what a person would see."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.tenant import TenantSpec, generate
from tests.support.preview import MARKUP, Broken, break_tenant

# One tenant, one dry run and one browser for the module: the tests only read the page.
pytestmark = pytest.mark.shared_tenant
TENANT = generate(TenantSpec(mailboxes=60, seed=21, cloud_managed_fraction=0.8))
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _browser_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    have_chromium = Path(CHROMIUM).exists() or shutil.which("chromium") is not None
    if sync_playwright is None and not have_chromium:
        if os.environ.get("CI"):
            pytest.fail("CI must have playwright and Chromium (.ci/run installs chromium)")
        pytest.skip("neither playwright nor Chromium is installed")
    assert sync_playwright is not None, "playwright is missing (pip install -e '.[test]')"
    assert have_chromium, f"Chromium is missing at {CHROMIUM} (apt-get install chromium)"
    return sync_playwright


@pytest.fixture(scope="module")
def written(shared_run, tmp_path_factory) -> tuple[Broken, Path]:
    """The served tenant broken in every way, and the folder `exwb cycle --report` wrote."""
    run, tmp_path = shared_run, tmp_path_factory.mktemp("preview")
    broken = break_tenant(run, TENANT)
    endpoints = tmp_path / "endpoints.json"
    run.endpoints.write(endpoints)
    out = tmp_path / "report"
    code = main(
        [
            "cycle", "--endpoints-file", str(endpoints), "--state-dir", str(tmp_path / "state"),
            "--mode", "dry-run", "--report", str(out),
        ]
    )  # fmt: skip
    assert code == 1  # failures are predicted
    return broken, out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, written) -> Iterator[Any]:
    """preview.html freshly opened, every request but the file's own refused."""
    _, out = written
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    requests: list[str] = []

    def block(route: Any) -> None:
        if not route.request.url.startswith("file://"):
            requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", block)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "preview.html").as_uri())
    yield page
    context.close()
    assert requests == [], "the page asked the network for something"
    assert errors == [], errors


def _visible_rows(page: Any) -> list[list[str]]:
    rows = page.locator("#objects tbody tr:visible")
    return [
        [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_the_chart_has_one_bar_per_changed_attribute(page, written, tmp_path):
    chart = page.locator("#chart svg")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    labels = set(page.eval_on_selector_all("#chart svg text", "ts => ts.map(t => t.textContent)"))
    changed = {"extensionAttribute1", "extensionAttribute2", "proxyAddresses"}
    assert changed <= labels
    for name in changed:
        assert page.locator(f'#chart [id="bar-{name}-change"]').is_visible()
    assert page.locator('#chart [id="bar-extensionAttribute1-failure"]').is_visible()
    assert not page.locator('#chart [id="bar-proxyAddresses-failure"]').is_visible()  # none
    page.screenshot(path=str(tmp_path / "preview.png"), full_page=True)
    assert (tmp_path / "preview.png").stat().st_size > 10_000


def test_the_table_shows_the_planned_and_skipped_objects(page, written):
    broken, _ = written
    rows = _visible_rows(page)
    text = page.locator("#summary").inner_text()
    assert "4 objects would change, 2 would fail" in text
    failures = [r for r in rows if r[5] == "failure"]
    assert {(r[2], r[6].split(":", 1)[0]) for r in failures} == {
        ("extensionAttribute1", "19"),
        ("extensionAttribute1", "50"),
    }
    outside = next(r for r in failures if r[6].startswith("50"))
    assert outside[0] == broken.outside_dn and "INSUFF_ACCESS_RIGHTS" in outside[6]
    assert page.locator("#shown").inner_text() == f"{len(rows)} of {len(rows)} rows shown"
    assert any(r[5] == "skipped" and r[6] == "out of scope" for r in rows)


def test_typing_in_the_filter_hides_rows_that_do_not_match(page, written):
    broken, _ = written
    page.fill("#filter", broken.extra_address)
    rows = _visible_rows(page)
    assert [r[2] for r in rows] == ["proxyAddresses"]
    assert broken.extra_address in rows[0][4]
    assert page.locator("#shown").inner_text().startswith("1 of ")
    page.fill("#filter", "")
    assert len(_visible_rows(page)) > 1


def test_choosing_failure_shows_only_the_predicted_failures(page):
    page.select_option("#outcome", "failure")
    rows = _visible_rows(page)
    assert len(rows) == 2 and {r[5] for r in rows} == {"failure"}
    page.select_option("#outcome", "skipped")
    assert {r[5] for r in _visible_rows(page)} == {"skipped"}


def test_markup_in_a_value_is_shown_as_text_not_run(page, written):
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#objects img").count() == 0
    page.fill("#filter", "__pwned")
    rows = _visible_rows(page)
    assert len(rows) == 1 and rows[0][4] == MARKUP
