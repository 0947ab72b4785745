"""The dashboard end to end: `saa-lab serve` in its own process, driven by headless
Chromium (Playwright with the system's Chromium): log in, open the waiting run, see its
curve, release it, see its messages in the outbox.

Skips when the playwright package or a Chromium executable is missing (`.ci/run`
installs both).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ProcessedLab
from web_support import PASSWORD, make_lab

from saa_lab.store.review import run_view

pytestmark = pytest.mark.slow

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The system Chromium (env SAA_LAB_CHROMIUM first), or skip the test."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    found = os.environ.get("SAA_LAB_CHROMIUM") or next(
        (p for p in map(shutil.which, CHROMIUM_NAMES) if p), None
    )
    if not found:
        pytest.skip("no Chromium executable (apt-get install chromium) for the browser tests")
    return found


def start_server(config_path: Path, timeout: float = 30.0) -> tuple[subprocess.Popen[str], str]:
    """``saa-lab serve --port 0 --json`` in a subprocess; returns it and its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "saa_lab", "--config", str(config_path), "serve", "--port", "0",
         "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SAA_LAB_")},
    )  # fmt: skip
    assert server.stdout is not None
    with selectors.DefaultSelector() as waiting:
        waiting.register(server.stdout, selectors.EVENT_READ)
        if not waiting.select(timeout):
            server.kill()
            _, err = server.communicate()
            pytest.fail(f"saa-lab serve did not start within {timeout:g} s: {err}")
    line = server.stdout.readline()
    if not line:
        _, err = server.communicate()
        pytest.fail(f"saa-lab serve stopped: {err}")
    return server, str(json.loads(line)["url"])


@pytest.fixture
def served(tmp_path: Path, runner: CliRunner) -> Iterator[tuple[ProcessedLab, str]]:
    lab = make_lab(tmp_path / "lab", runner)
    server, url = start_server(lab.config_path)
    try:
        yield lab, url
    finally:
        server.terminate()  # SIGTERM: the server stops and exits 0
        try:
            assert server.wait(timeout=10) == 0
        finally:
            if server.poll() is None:
                server.kill()
            if server.stdout:
                server.stdout.close()
            if server.stderr:
                server.stderr.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def test_open_a_run_see_its_curve_release_it_and_see_the_message_in_the_outbox(
    served: tuple[ProcessedLab, str], browser: Any
) -> None:
    from playwright.sync_api import expect

    lab, url = served
    page = browser.new_page()
    started = time.perf_counter()
    page.goto(url)  # every page needs a login
    expect(page).to_have_url(f"{url}login?next=/")
    page.fill("input[name=username]", "amoss")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button")
    expect(page.locator("h1")).to_have_text("Recent runs")

    page.click("text=run 1")
    expect(page.locator("h1").first).to_contain_text("Run 1: RUN-G5-001.txt")
    curve = page.locator("#chart-curve svg")
    expect(curve).to_be_visible()
    box = curve.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200

    page.select_option("form.release select[name=meaning]", "approved")
    page.fill("form.release input[name=comment]", "curve and controls checked")
    page.click("button.release")
    expect(page.locator(".flash.ok")).to_contain_text("released by amoss (approved)")
    expect(page.locator("form.release")).to_have_count(0)

    page.click("nav >> text=Outbox")
    messages = page.locator("table.messages tbody tr")
    expect(messages.first).to_be_visible()
    with lab.store() as store:
        assert run_view(store, 1).review_status == "released"
        released = [r for r in run_view(store, 1).results if r.state == "released"]
    control_ids = [m.control_id for r in released for m in r.messages]
    assert control_ids
    expect(page.locator("table.messages")).to_contain_text(control_ids[0])
    expect(page.locator("table.queues")).to_contain_text("file")
    assert time.perf_counter() - started < 60


def test_a_page_posted_from_another_site_is_refused(
    served: tuple[ProcessedLab, str], browser: Any
) -> None:
    """A cross-site form post carries no session cookie (SameSite=Strict) and no token."""
    lab, url = served
    page = browser.new_page()
    page.goto(url + "login")
    page.fill("input[name=username]", "amoss")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button")
    page.set_content(
        f'<form method="post" action="{url}runs/1/release">'
        '<input name="meaning" value="approved"><button>go</button></form>'
    )
    with page.expect_navigation():
        page.click("button")
    assert page.locator("h1").first.inner_text() in {"400", "401"}
    with lab.store() as store:
        assert run_view(store, 1).review_status == "waiting"
