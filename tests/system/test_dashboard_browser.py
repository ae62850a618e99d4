"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium; tests/services.sh installs them): `clarion serve` as a subprocess, a
50,000-recipient campaign started, paused and resumed from the page under a rate limit,
and every recipient in the sandbox's ledger exactly once.

Set UPDATE_SCREENSHOTS=1 to write the screenshot the README shows
(docs/dashboard.png); otherwise it goes to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from campaigns.db import session_scope
from campaigns.models import Run
from tests.seed import status_counts
from tests.serving import TOKEN, served_campaign

pytestmark = [pytest.mark.services, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO = Path(__file__).resolve().parents[2]
RECIPIENTS = 50_000
RATE = 2_500  # messages/s: the run takes about 20 s


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are missing: run `bash tests/services.sh`")
    profile = tempfile.mkdtemp(prefix="clarion-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1100",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def number(driver: WebDriver, element_id: str) -> int:
    """The integer shown in an element the page refreshes (re-found on every read)."""
    for _ in range(5):
        try:
            return int(driver.find_element(By.ID, element_id).text.replace(",", ""))
        except (StaleElementReferenceException, ValueError):
            time.sleep(0.1)
    raise AssertionError(f"#{element_id} shows no number")


def text_of(driver: WebDriver, element_id: str) -> str:
    for _ in range(5):
        try:
            return str(driver.find_element(By.ID, element_id).text)
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"#{element_id} not found")


def until(driver: WebDriver, timeout: float, what: str, check: Callable[[], Any]) -> Any:
    def attempt(_: WebDriver) -> Any:
        try:
            return check()
        except (WebDriverException, AssertionError):
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(attempt, f"waiting for {what}")


def click_and_confirm(driver: WebDriver, button_id: str, expect: str) -> None:
    driver.find_element(By.ID, button_id).click()
    alert = WebDriverWait(driver, 10).until(lambda d: d.switch_to.alert)
    assert expect in alert.text
    alert.accept()


def test_start_watch_pause_resume_in_chromium(
    pg_url: str, tmp_path: Path, browser: WebDriver
) -> None:
    with served_campaign(
        pg_url, tmp_path, recipients=RECIPIENTS, messages_per_second=RATE
    ) as served:
        page = f"{served.url}/ui/campaigns/{served.campaign_id}"
        browser.get(page)
        assert "/ui/login" in browser.current_url  # the page asks for the token first
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "login").click()
        until(browser, 15, "the campaign page", lambda: browser.current_url == page)
        assert "spring-sale" in browser.find_element(By.TAG_NAME, "h1").text

        click_and_confirm(browser, "start", "Start campaign")
        until(browser, 30, "the run to start", lambda: number(browser, "done") > 0)
        # Sending starts with the first chunk while the expansion writes the rest: the
        # total grows to the whole audience.
        until(browser, 30, "the whole audience", lambda: number(browser, "total") == RECIPIENTS)
        with session_scope(pg_url) as session:
            run_id, key = session.execute(
                select(Run.id, Run.key).where(Run.campaign_id == served.campaign_id)
            ).one()

        # The numbers rise on their own (the page refreshes its live part).
        first = number(browser, "done")
        until(browser, 15, "progress to rise", lambda: number(browser, "done") > first + 1000)
        second = number(browser, "done")
        until(browser, 15, "progress to rise again", lambda: number(browser, "done") > second)
        assert number(browser, "count-sent") > 0
        until(browser, 15, "a rate", lambda: text_of(browser, "rate") != "0 msg/s")
        shot = tmp_path / "dashboard.png"
        browser.save_screenshot(str(shot))

        click_and_confirm(browser, "pause", "Pause campaign")
        until(browser, 20, "the run paused", lambda: text_of(browser, "run-status") == "paused")
        assert browser.find_element(By.ID, "resume")
        # Counts come from a refresh up to a second old: let the batch on the wire settle.
        time.sleep(3)
        paused_at = number(browser, "done")
        accepted_at_pause = served.sandbox.ledger(key)["accepted_total"]
        time.sleep(4)
        assert number(browser, "done") == paused_at, "numbers moved while paused"
        assert served.sandbox.ledger(key)["accepted_total"] == accepted_at_pause
        assert 0 < paused_at < RECIPIENTS, "pause came too late to show anything"

        click_and_confirm(browser, "resume", "Resume campaign")
        until(
            browser,
            120,
            "the run to finish",
            lambda: text_of(browser, "run-status") == "completed",
        )
        assert number(browser, "done") == RECIPIENTS
        assert number(browser, "count-sent") == RECIPIENTS

        assert status_counts(pg_url, run_id) == {"sent": RECIPIENTS}
        ledger = served.sandbox.ledger(key)
        assert ledger["accepted_total"] == RECIPIENTS
        assert not ledger["duplicates"]
        assert sorted(ledger["by_recipient"]) == sorted(served.phones)
        assert set(ledger["by_recipient"].values()) == {1}

    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, REPO / "docs" / "dashboard.png")
