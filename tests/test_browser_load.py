"""Many sessions on one app server, in a real browser (see test_browser.py): eight sessions train at once on the
tiny MNIST, each ends with its own run and only its own, and a further session opens the Data page meanwhile (its
time is printed and written to test-artifacts/; `benchmarks/load.py` measures it on the real MNIST)."""

from __future__ import annotations

import json
import re
import time

import pytest
from test_browser import (  # the app server and the browser helpers
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    TRAIN_TIMEOUT_MS,
    _metric_value,
    _playwright,
    _test_metric,
    _wait_until_idle,
    serving,
)

from core.store.history import RunHistory
from core.store.location import DATABASE_URL_ENV, default_path

SESSIONS = 8
EPOCHS = 15  # on the tiny MNIST, long enough that every run is still training when the last one starts
FIRST_WIDTH = 20  # session i trains a 784-(FIRST_WIDTH + i)-10 MLP: its run's name says whose it is


@pytest.fixture
def tiny_app_url(tiny_data_dir):
    with serving(tiny_data_dir) as (url, _):
        yield url


def _all_running_at_once(names: set[str], seconds: float = 120) -> bool:
    """Watch the run history (a run is in it, "running", from its start) until the runs `names` are all in it:
    whether they were all running then, none having ended before the last one started."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = [row for row in RunHistory(default_path()).list() if row.name in names]
        if any(row.status != "running" for row in rows):
            return False
        if len(rows) == len(names):
            return True
        time.sleep(0.05)
    pytest.fail(f"not every run started in {seconds:.0f} s: {RunHistory(default_path()).list()}")


def test_eight_sessions_train_at_once_and_each_keeps_its_own_run(tiny_app_url):
    playwright_api = _playwright()
    expect = playwright_api.expect
    names = {FIRST_WIDTH + i: f"784-{FIRST_WIDTH + i}-10 relu #1" for i in range(SESSIONS)}
    timings = {}
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        first = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
        first.goto(tiny_app_url)  # the Data page's statistics computed once, as for any visitor but the first
        expect(first.get_by_text("LeNet-5:")).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        first.context.close()
        sessions = {}
        for width in names:  # each session's setup from its address, as a shared link gives it (all loading at once)
            page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
            page.set_default_timeout(90_000)
            page.goto(f"{tiny_app_url}/train?hidden={width}&epochs={EPOCHS}")
            sessions[width] = page
        for width, page in sessions.items():
            expect(page.get_by_role("textbox", name="Hidden layer widths")).to_have_value(str(width))
            _wait_until_idle(page)
        for page in sessions.values():
            page.get_by_role("button", name="Train", exact=True).click()
        assert _all_running_at_once(set(names.values())), "a run ended before the last one started"

        further = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
        started = time.monotonic()
        further.goto(tiny_app_url)
        expect(further.get_by_text("Images per digit")).to_be_visible()
        timings["further_session_data_shown_seconds"] = round(time.monotonic() - started, 2)
        expect(further.locator(".js-plotly-plot")).to_have_count(6)  # the gallery and the five statistics charts
        expect(further.get_by_text("LeNet-5:")).to_be_visible()
        timings["further_session_data_page_seconds"] = round(time.monotonic() - started, 2)
        timings["sessions_still_training_then"] = sum(
            page.get_by_role("button", name="Stop", exact=True).count() > 0 for page in sessions.values())

        shown = {}
        for number, (width, page) in enumerate(sessions.items(), 1):
            expect(_test_metric(page)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
            _wait_until_idle(page)
            page.screenshot(path=ARTIFACTS / f"load-session-{number}.png")
            runs_table = page.locator('[data-testid="stDataFrame"] table[role="grid"]')  # its accessible copy
            shown[width] = {"latest": page.get_by_role("heading", name=re.compile("^Latest run: ")).inner_text(),
                            "epochs": _metric_value(page, "Epochs"),
                            "rows": runs_table.get_attribute("aria-rowcount"), "table": runs_table.inner_text()}
        browser.close()
    for width, seen in shown.items():  # each session shows its own run, trained to the end, and no other
        assert seen["latest"] == f"Latest run: {names[width]}", shown
        assert float(seen["epochs"]) == EPOCHS, shown
        assert seen["rows"] == "2" and names[width] in seen["table"], shown  # the header and its one run

    saved = RunHistory(default_path()).list()
    assert sorted(row.name for row in saved) == sorted(names.values())
    for row in saved:
        assert row.status == "finished" and row.epochs == EPOCHS and row.test_accuracy is not None, row
        assert row.architecture == row.name.removesuffix(" #1"), row  # its own network
    (ARTIFACTS / "load-timings.json").write_text(json.dumps(timings, indent=1))
    print(f"\nload timings: {timings}")


def test_two_app_processes_on_one_postgresql_history_both_save(tiny_data_dir, postgres_url):
    """Two app servers ($DIGIT_LAB_DATABASE_URL naming one PostgreSQL database), a session training in each: both
    runs are saved there, numbered across the two processes, and each app's Runs page lists both."""
    playwright_api = _playwright()
    expect = playwright_api.expect
    env = {DATABASE_URL_ENV: postgres_url}
    history = RunHistory(postgres_url)
    with (serving(tiny_data_dir, env) as (first_url, _), serving(tiny_data_dir, env) as (second_url, _),
          playwright_api.sync_playwright() as p):
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pages = []
        for url in (first_url, second_url):
            page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
            page.set_default_timeout(90_000)
            page.goto(f"{url}/train?epochs=2")
            expect(page.get_by_role("heading", name="Train a network")).to_be_visible()
            _wait_until_idle(page)
            pages.append(page)
        for number, page in enumerate(pages, 1):
            page.get_by_role("button", name="Train", exact=True).click()
            deadline = time.monotonic() + 60  # in the history from its start: the next run is numbered after it
            while len(history.list()) < number and time.monotonic() < deadline:
                time.sleep(0.1)
        for number, page in enumerate(pages, 1):
            expect(_test_metric(page)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
            _wait_until_idle(page)
            latest = page.get_by_role("heading", name=f"Latest run: 784-300-10 relu #{number}", exact=True)
            expect(latest).to_be_visible()
        for page in pages:
            page.get_by_role("link", name="Runs", exact=True).first.click()
            expect(page.get_by_text("2 of 2 saved runs match")).to_be_visible()
        browser.close()
    saved = history.list()
    assert sorted(row.name for row in saved) == ["784-300-10 relu #1", "784-300-10 relu #2"]
    assert all(row.status == "finished" and row.test_accuracy is not None for row in saved), saved


def test_sessions_starting_the_same_run_at_once_get_numbers_of_their_own(tiny_app_url):
    """Four sessions press Train on the same settings at the same moment: each run is numbered after the others (they
    were all "#1": each session read the history before any had written its run there)."""
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pages = [browser.new_context(viewport={"width": 1400, "height": 1800}).new_page() for _ in range(4)]
        for page in pages:
            page.set_default_timeout(90_000)
            page.goto(f"{tiny_app_url}/train?hidden=50&epochs=3")
        for page in pages:
            expect(page.get_by_role("textbox", name="Hidden layer widths")).to_have_value("50")
            _wait_until_idle(page)
        for page in pages:
            page.get_by_role("button", name="Train", exact=True).click()
        for page in pages:
            expect(_test_metric(page)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        browser.close()
    names = sorted(row.name for row in RunHistory(default_path()).list())
    assert names == [f"784-50-10 relu #{number}" for number in range(1, 5)]
