"""End to end in a real browser: Playwright drives Debian's chromium against `streamlit run Home.py` on the real
MNIST. Train softmax regression for one epoch, then see its mistakes and its ten weight images.

Screenshots of each page and the measured timings go to test-artifacts/. In CI (CI=true) a missing browser
fails the test; elsewhere it skips, saying why.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import REPO

from core.data.spec import MNIST_SPEC
from core.networks.base import Model, ModelConfig, seed_key
from core.store.history import RunHistory
from core.store.location import default_path
from core.training.config import RunConfig
from core.training.runs import Run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TRAIN_TIMEOUT_MS = 240_000


def _require(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required in CI)")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_url(app_server):
    return app_server[0]


@pytest.fixture
def app_server(real_mnist_dir):
    """The app's address and its server process."""
    with serving(real_mnist_dir) as served:
        yield served


@contextmanager
def serving(mnist_dir: Path, env: dict[str, str] | None = None, *, port: int | None = None,
            options: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run Home.py` on the MNIST in `mnist_dir` (with `env` added to this process's environment, on `port`
    or a free one, with Streamlit's command-line `options` added): its address and its process, stopped on the way
    out."""
    port = port or _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", *options],
        cwd=REPO, env={**os.environ, "MNIST_DATA_DIR": str(mnist_dir), **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start: {server.stdout.read().decode()[-2000:]}") from None
                time.sleep(0.5)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_train_softmax_regression_then_see_results_and_weights(app_url):
    playwright_api = _playwright()
    timings = {}
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.set_default_timeout(90_000)
        expect = playwright_api.expect

        page.goto(app_url)
        expect(page.get_by_text("Images per digit")).to_be_visible()
        logo = page.get_by_test_id("stSidebarLogo")  # assets/logo.svg, drawn (not a broken image)
        expect(logo).to_be_visible()
        assert logo.evaluate("img => img.naturalWidth") > 0
        expect(page.locator(".js-plotly-plot")).to_have_count(6)  # the gallery and the five statistics charts
        page.screenshot(path=ARTIFACTS / "1-data.png")

        page.get_by_role("link", name="Train", exact=True).first.click()
        expect(page.get_by_role("heading", name="Train a network")).to_be_visible()
        page.get_by_text("Softmax regression", exact=True).click()
        expect(page.get_by_text("Hidden layer widths")).to_have_count(0)
        _type_epochs(playwright_api, page, 1)

        started = time.monotonic()
        page.get_by_role("button", name="Train", exact=True).click()
        # The live progress line of a one-epoch run can be on the page for well under a second: looked for every
        # 50 ms (Playwright's `expect` comes to look only once a second).
        page.wait_for_function("() => /Epoch [0-9.]+ of 1\\b/.test(document.body.innerText)", polling=50,
                               timeout=TRAIN_TIMEOUT_MS)
        timings["first_curve_point_seconds"] = round(time.monotonic() - started, 2)
        test_metric = page.locator('[data-testid="stMetric"]', has_text="Test accuracy")
        expect(test_metric).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        timings["finished_run_seconds"] = round(time.monotonic() - started, 2)
        accuracy = test_metric.locator('[data-testid="stMetricValue"]').inner_text()
        timings["test_accuracy"] = accuracy
        assert 85 < float(accuracy.rstrip("%")) <= 100
        page.screenshot(path=ARTIFACTS / "2-train.png")

        page.get_by_role("link", name="Results", exact=True).first.click()
        expect(page.get_by_role("heading", name="Misclassified test images")).to_be_visible()
        mistakes = page.get_by_text(re.compile(r"^([0-9])→(?!\1)[0-9]\u00a0·\u00a0[0-9]+% #[0-9]+$"))
        expect(mistakes.first).to_be_visible()
        assert mistakes.count() >= 10  # a full page of mistakes (softmax regression gets ~800 wrong)
        page.screenshot(path=ARTIFACTS / "3-results.png")

        # Clicking the confusion-matrix cell (true 5, predicted 3) lists exactly those mistakes.
        matrix = page.locator(".js-plotly-plot").first
        matrix.scroll_into_view_if_needed()
        x, y, count = matrix.evaluate("""gd => {
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.l2p(3), box.top + ya._offset + ya.l2p(5), """
            """parseInt(gd.data[0].text[5][3])];
        }""")
        page.mouse.click(x, y)
        expect(page.get_by_text(f"{count} misclassified images match")).to_be_visible()
        expect(mistakes.first).to_be_visible()
        assert mistakes.count() == min(count, 40)
        assert all(text.startswith("5→3\u00a0") for text in mistakes.all_inner_texts())
        # The filters set back to "any", the same cell clicked again (plotly's deselect) selects it again.
        for label in ("True digit", "Predicted digit"):
            page.get_by_role("combobox", name=label).click()
            page.get_by_role("option", name="any", exact=True).click()
            _wait_until_idle(page)
        expect(page.get_by_text(f"{count} misclassified images match")).to_have_count(0)
        page.mouse.click(x, y)
        expect(page.get_by_text(f"{count} misclassified images match")).to_be_visible()

        page.get_by_role("link", name="Weights", exact=True).first.click()
        expect(page.get_by_text("Incoming weights of the 10 units of layer output")).to_be_visible()
        expect(page.locator(".js-plotly-plot .hm")).to_have_count(10)  # one heatmap per digit
        for digit in range(10):
            expect(page.get_by_text(f"digit {digit}", exact=True)).to_be_visible()
        page.screenshot(path=ARTIFACTS / "4-weights.png")

        # Server-side export through kaleido (which uses the same chromium): a PNG named after run, chart and date.
        page.get_by_role("button", name="Save chart").first.click()
        with page.expect_download(timeout=120_000) as download:
            page.get_by_test_id("stPopoverBody").get_by_role("button", name="PNG", exact=True).click()
        name = download.value.suggested_filename
        assert re.fullmatch(r"softmax-regression-1_output-weights-0-9-epoch-1_\d{4}-\d{2}-\d{2}\.png", name), name
        assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # Stop halts a long MLP run at the next chunk and keeps (and evaluates) the model trained so far.
        page.get_by_role("link", name="Train", exact=True).first.click()
        page.get_by_text("MLP", exact=True).click()
        expect(page.get_by_text("Hidden layer widths")).to_be_visible()
        _type_epochs(playwright_api, page, 20)
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text(re.compile(r"Epoch [0-9.]+ of 20")).first).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        page.get_by_role("button", name="Stop", exact=True).last.click()
        expect(page.get_by_text(re.compile(r"Stopped after [0-9.]+ of 20 epochs"))).to_be_visible()
        expect(test_metric).to_be_visible()
        page.screenshot(path=ARTIFACTS / "5-train-stopped.png")
        # The run picker shows the stopped run: the Stop click's rerun carries the picker's value from before the
        # run began (the softmax run), which must not select that one again.
        expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(
            re.compile(r"^784-300-10 relu #1 \(784-300-10 relu, stopped"), timeout=10_000)
        browser.close()
    (ARTIFACTS / "browser-timings.json").write_text(json.dumps(timings, indent=1))
    print(f"\nbrowser timings: {timings}")


def _playwright():
    """The Playwright sync API, or a skip (a failure in CI) saying what is missing."""
    _require(Path(CHROMIUM).exists(), f"no chromium browser at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright import sync_api as playwright_api
    except ImportError:
        playwright_api = None
    _require(playwright_api is not None, "Playwright for Python is not installed (pip install -r requirements-dev.txt)")
    ARTIFACTS.mkdir(exist_ok=True)
    playwright_api.expect.set_options(timeout=90_000)  # the first page loads MNIST and imports JAX
    return playwright_api


def _start_a_long_training(playwright_api, page, url: str) -> None:
    """Open the app and start softmax regression for 200 epochs; return once it is training."""
    _open_train_page(playwright_api, page, url, 200)
    page.get_by_role("button", name="Train", exact=True).click()
    playwright_api.expect(page.get_by_text(re.compile(r"Epoch [0-9.]+ of 200")).first).to_be_visible(
        timeout=TRAIN_TIMEOUT_MS)


def _open_train_page(playwright_api, page, url: str, epochs: int) -> None:
    """Open the app, go to Train and set up softmax regression for `epochs` epochs (not started)."""
    expect = playwright_api.expect
    page.set_default_timeout(90_000)
    page.goto(url)
    expect(page.get_by_text("Images per digit")).to_be_visible()
    page.get_by_role("link", name="Train", exact=True).first.click()
    expect(page.get_by_role("heading", name="Train a network")).to_be_visible()
    page.get_by_text("Softmax regression", exact=True).click()
    expect(page.get_by_text("Hidden layer widths")).to_have_count(0)
    _type_epochs(playwright_api, page, epochs)


def _type_epochs(playwright_api, page, epochs: int) -> None:
    """Type the Train page's epochs into its box, and wait until the app has them: until its slider, which the app
    moves to follow the box, shows them. (Not merely until no script runs: the rerun the typing asked for may not
    have begun yet. A Train click that overtakes it sends the slider's old value, which the app then takes for the
    slider having been moved, and the run trains the old number of epochs.)"""
    field = page.get_by_label("Epochs (exact value)")
    field.fill(str(epochs))
    field.press("Enter")
    thumb = page.get_by_test_id("stSlider").filter(has_text="Epochs").get_by_role("slider")
    playwright_api.expect(thumb).to_have_attribute("aria-valuetext", str(epochs))
    _wait_until_idle(page)


def _test_metric(page):
    return page.locator('[data-testid="stMetric"]', has_text="Test accuracy")


def _metric_value(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]', has_text=label)
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def _wait_until_idle(page) -> None:
    """Wait until this session's script run is over (Streamlit shows the status widget while running)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=TRAIN_TIMEOUT_MS)


def _assert_no_error_on_page(playwright_api, page, name: str) -> None:
    playwright_api.expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert "Traceback" not in page.locator("body").inner_text(), f"a traceback on the {name} page"


def test_two_sessions_train_at_once(app_url):
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        sessions = {"a": (browser.new_context(viewport={"width": 1400, "height": 2400}).new_page(), 2),
                    "b": (browser.new_context(viewport={"width": 1400, "height": 2400}).new_page(), 1)}
        for page, epochs in sessions.values():
            _open_train_page(playwright_api, page, app_url, epochs)

        (page_a, _), (page_b, _) = sessions.values()
        page_a.get_by_role("button", name="Train", exact=True).click()
        expect(page_a.get_by_role("button", name="Stop", exact=True)).to_be_visible()
        page_b.get_by_role("button", name="Train", exact=True).click()
        expect(page_b.get_by_role("button", name="Stop", exact=True)).to_be_visible()
        assert _test_metric(page_a).count() == 0, "session A finished before session B started: not concurrent"

        numbers = []
        for label, (page, epochs) in sessions.items():
            expect(_test_metric(page)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
            _wait_until_idle(page)
            assert 85 < float(_metric_value(page, "Test accuracy").rstrip("%")) <= 100
            assert float(_metric_value(page, "Epochs")) == epochs
            # Each session has exactly its own run, with its own epochs, numbered in the history they share: one is
            # #1 and the other #2 (in the order they were first written there), not both #1.
            heading = page.get_by_role("heading", name=re.compile(r"Latest run: .* #\d+$"))
            expect(heading).to_be_visible()
            numbers.append(heading.inner_text().rsplit("#", 1)[1])
            runs_table = page.locator('[data-testid="stDataFrame"] table[role="grid"]')  # its accessible copy
            expect(runs_table).to_have_attribute("aria-rowcount", "2", timeout=10_000)  # the header and one run
            expect(runs_table).to_contain_text(f"#{numbers[-1]}")
            page.screenshot(path=ARTIFACTS / f"{6 if label == 'a' else 7}-session-{label}.png")
        browser.close()
    assert sorted(numbers) == ["1", "2"]


def test_a_run_whose_tab_is_closed_mid_training_is_kept_in_the_run_history(app_url):
    """Closing or reloading the tab ends the session, and no rerun comes to settle its run: the run is finished
    (stopped, evaluated) and saved to the run history as its script stops."""
    playwright_api = _playwright()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        _start_a_long_training(playwright_api, page, app_url)
        page.close()
        browser.close()
    [row] = _wait_for_an_ended_run()
    assert row.status == "stopped" and 0.5 < row.test_accuracy <= 1  # evaluated: far above chance (10%)
    run = RunHistory(default_path()).load(row.run_id)
    assert 0 < run.epochs_completed < 200 and run.params is not None


def _reload_from_history(playwright_api, page, app_url: str, name: str) -> None:
    """On the Runs page, select the one saved run, `name`, and reload it into the session."""
    expect = playwright_api.expect
    page.goto(f"{app_url}/runs")
    expect(page.get_by_text("1 of 1 saved runs match")).to_be_visible()
    page.get_by_test_id("stMultiSelect").filter(has_text="Select runs").locator("input").click()
    page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")
    _wait_until_idle(page)
    page.get_by_role("button", name=re.compile("^Reload")).click()
    expect(page.get_by_text(f"Loaded '{name}' into this session")).to_be_visible()


def _wait_for_an_ended_run(seconds: float = 60) -> list:
    """The history's runs, once one of them has ended (a run is in it, "running", from its start)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        saved = RunHistory(default_path()).list()
        if any(row.status != "running" for row in saved):
            return saved
        time.sleep(0.5)
    pytest.fail(f"no run ended in {seconds:.0f} s: {RunHistory(default_path()).list()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_an_app_told_to_stop_mid_training_stops_evaluates_and_saves_the_run(app_server, signum):
    """SIGTERM (docker, systemd), Ctrl-C or SIGHUP (its terminal closed): the app ends its sessions, whose training
    stops at its next chunk, is evaluated and saved before the process exits."""
    url, server = app_server
    playwright_api = _playwright()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        _start_a_long_training(playwright_api, page, url)
        server.send_signal(signum)
        output = server.communicate(timeout=90)[0].decode()
        browser.close()
    [row] = RunHistory(default_path()).list()
    # evaluated: stopped within its first epoch, softmax regression is already far above chance (10%)
    assert row.status == "stopped" and 0.5 < row.test_accuracy <= 1, (row, output[-3000:])
    assert 0 < RunHistory(default_path()).load(row.run_id).epochs_completed < 200


def test_a_selected_run_renamed_on_the_runs_page_stays_selected_and_usable(app_url):
    """The selector shows runs by name: after a rename its choice still means the same run (it raised a TypeError
    at the next click), and the session's copy of the run follows the new name."""
    config = RunConfig(ModelConfig("linear"))
    params = Model(config.model, MNIST_SPEC).init(seed_key(0))
    RunHistory(default_path()).save(Run("before", config, MNIST_SPEC, params=params, status="finished",
                                        test_accuracy=0.1))
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        _reload_from_history(playwright_api, page, app_url, "before")
        _wait_until_idle(page)  # (a rerun still drawing the page would put the name back in the field as it is typed)
        new_name = page.get_by_label("New name")
        new_name.fill("after")
        expect(new_name).to_have_value("after")
        new_name.press("Enter")  # renames: the field and its Rename button are one form
        expect(page.get_by_text("Renamed to 'after'.")).to_be_visible()
        page.get_by_role("button", name=re.compile("^Reload")).click()
        expect(page.get_by_text("Loaded 'after' into this session")).to_be_visible()
        _assert_no_error_on_page(playwright_api, page, "Runs")
        browser.close()


def _choose_only(page, label: str, option: str) -> None:
    """Empty the multiselect labelled `label`, then pick `option` alone."""
    widget = page.get_by_test_id("stMultiSelect").filter(has_text=label)
    widget.get_by_role("button", name="Clear all").click()
    _wait_until_idle(page)
    widget.locator("input").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    _wait_until_idle(page)


def test_every_page_renders_with_a_trained_run(app_url):
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        _open_train_page(playwright_api, page, app_url, 1)
        page.get_by_role("button", name="Train", exact=True).click()
        expect(_test_metric(page)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        latest = page.get_by_role("heading", name=re.compile(r"^Latest run: ")).inner_text()
        run_name = latest.removeprefix("Latest run: ")

        charts = page.locator(".js-plotly-plot")
        last_element = {  # what each page draws last: once it is there, the page has rendered in full
            "Data": page.get_by_text("LeNet-5:"), "Train": page.get_by_text("Load a saved model file"),
            "Results": page.get_by_role("heading", name="Download this run"),
            "Weights": page.get_by_role("button", name="Save chart"),
            "Playground": page.get_by_text("Nothing is drawn yet"),
            "Runs": page.get_by_text(re.compile(r"1 of 1 saved runs? match")),
            "Gradient check": page.get_by_role("button", name="Run the finite-difference check"),
            "Backprop timing": page.get_by_role("button", name="Time them"),
            "Loss landscape": page.get_by_text(re.compile(r"^Lowest grid cost")),
            "Reproduction": page.get_by_role("button", name="Train selected presets"),
            "Overfitting": page.get_by_role("button", name="Train all sizes"),
            "Sweep": page.get_by_role("button", name="Train the sweep"),
        }
        for name, last in last_element.items():
            page.get_by_role("link", name=name, exact=True).first.click()
            expect(page.get_by_role("link", name=name, exact=True).first).to_have_attribute("aria-current", "page")
            expect(last.first).to_be_visible()
            _wait_until_idle(page)
            if name in ("Results", "Weights", "Gradient check", "Loss landscape"):  # they pick the trained run
                expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(
                    re.compile("^" + re.escape(run_name)), timeout=10_000)
            if name == "Runs":  # the ended run was saved to the run history
                expect(page.locator('[data-testid="stMain"] table[role="grid"]').first).to_contain_text(
                    run_name, timeout=10_000)
            if name == "Gradient check":  # every weight of the trained softmax regression: a few seconds
                page.get_by_role("button", name="Run the finite-difference check").click()
                expect(page.get_by_text("The gradient agrees with the finite differences")).to_be_visible(
                    timeout=TRAIN_TIMEOUT_MS)
                _wait_until_idle(page)
                expect(charts).to_have_count(2)  # error against h, and the per-tensor differences
            if name == "Backprop timing":  # the smallest sizes only: about ten seconds
                _choose_only(page, "Batch sizes", "10")
                _choose_only(page, "Hidden widths", "16")
                page.get_by_role("button", name="Time them").click()
                expect(page.get_by_text("Speed-up of the hand-vectorised gradient")).to_be_visible(
                    timeout=TRAIN_TIMEOUT_MS)
                _wait_until_idle(page)
                expect(charts).to_have_count(2)
            if name == "Loss landscape":  # computed on load
                expect(charts).to_have_count(2)
            _assert_no_error_on_page(playwright_api, page, name)
            page.wait_for_function("Array.from(document.images).every(image => image.complete)")
            page.screenshot(path=ARTIFACTS / f"page-{name.lower().replace(' ', '-')}.png")
        browser.close()


# Strokes in the canvas's own pixels (280×280), as a hand would draw these digits.
DIGIT_STROKES = {
    "1": [[(145, 45), (140, 140), (138, 235)]],
    "7": [[(70, 60), (210, 60)], [(210, 60), (165, 150), (125, 235)]],
    "0": [[(140, 45), (95, 70), (80, 140), (95, 210), (140, 235), (185, 210), (200, 140), (185, 70), (140, 45)]],
}


def _settled_canvas(playwright_api, page):
    """The Playground's canvas and its place on the page, once it is the only one and stays put for a moment. Clear
    gives the canvas a new key: while Streamlit swaps them, the old and the new can both be on the page, or the one
    found can leave it before it is measured."""
    from playwright.sync_api import Error as PlaywrightError

    canvas = page.locator("canvas.upper-canvas")
    for _ in range(20):
        playwright_api.expect(canvas).to_have_count(1)
        try:
            handle = canvas.element_handle()
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            page.wait_for_timeout(300)
            if box and handle.evaluate("canvas => canvas.isConnected") and handle.bounding_box() == box:
                return handle, box
        except PlaywrightError as error:
            if not any(sign in str(error) for sign in ("not attached", "strict mode violation")):
                raise
        page.wait_for_timeout(300)
    raise AssertionError("the Playground's canvas never settled on the page")


def _draw(playwright_api, page, strokes) -> None:
    """Draw `strokes` on the Playground's canvas with the mouse, each in small moves as a hand does."""
    _, box = _settled_canvas(playwright_api, page)
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            for t in range(1, 11):
                page.mouse.move(box["x"] + x0 + (x1 - x0) * t / 10, box["y"] + y0 + (y1 - y0) * t / 10)
        page.mouse.up()


def _clear(playwright_api, page) -> None:
    """Press Clear and wait until the canvas it replaces has left the page and the empty one's note shows."""
    old, _ = _settled_canvas(playwright_api, page)
    page.get_by_role("button", name="Clear").click()
    page.wait_for_function("canvas => !canvas.isConnected", arg=old)
    playwright_api.expect(page.get_by_text("Nothing is drawn yet")).to_be_visible()
    _wait_until_idle(page)


def _prediction(playwright_api, page) -> tuple[str, list[float]]:
    """The predicted class in large type and the ten probabilities of the bars (the page's first chart)."""
    playwright_api.expect(page.get_by_text(re.compile(r"sure; next"))).to_be_visible()
    _wait_until_idle(page)
    page.wait_for_function("document.querySelector('.js-plotly-plot')?._fullData?.[0]?.y?.length === 10")
    bars = page.locator(".js-plotly-plot").first.evaluate("gd => Array.from(gd._fullData[0].y)")
    answer = page.get_by_test_id("stMarkdown").filter(has_text=re.compile(r"sure; next"))
    return answer.inner_text().strip().splitlines()[0].strip(), bars


def _draw_digits(playwright_api, page, name: str) -> dict[str, dict]:
    """Draw each digit of DIGIT_STROKES (Clear between them), with a screenshot of each; what was predicted."""
    predicted = {}
    for digit, strokes in DIGIT_STROKES.items():
        _clear(playwright_api, page)
        _draw(playwright_api, page, strokes)
        answer, bars = _prediction(playwright_api, page)
        assert len(bars) == 10 and abs(sum(bars) - 1) < 1e-4
        predicted[digit] = {"predicted": answer, "probability": round(max(bars), 4)}
        _assert_no_error_on_page(playwright_api, page, "Playground")
        page.screenshot(path=ARTIFACTS / f"playground-{name}-drew-{digit}.png")
    return predicted


def test_draw_digits_in_the_playground_on_a_freshly_trained_default_run(app_url):
    """The default run (784-300-10 ReLU MLP, Adam, 3 epochs), then three digits drawn with the mouse: each stroke
    gives ten probability bars, Clear empties the canvas, and another digit gets another prediction."""
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(90_000)
        page.goto(app_url)
        expect(page.get_by_text("Images per digit")).to_be_visible()
        page.get_by_role("link", name="Train", exact=True).first.click()
        page.get_by_role("button", name="Train", exact=True).click()
        expect(_test_metric(page)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        page.get_by_role("link", name="Playground", exact=True).first.click()
        expect(page.get_by_text("Nothing is drawn yet")).to_be_visible()

        _draw(playwright_api, page, DIGIT_STROKES["1"])
        _, first_bars = _prediction(playwright_api, page)
        # a second stroke on the same digit: the prediction follows it
        _draw(playwright_api, page, [[(60, 230), (220, 230)]])
        page.wait_for_function("""old => {
            const y = document.querySelector('.js-plotly-plot')?._fullData?.[0]?.y;
            return y && Array.from(y).some((p, i) => Math.abs(p - old[i]) > 1e-7);
        }""", arg=first_bars)

        predicted = _draw_digits(playwright_api, page, "default-run")
        assert predicted["1"]["predicted"] == "1"  # an upright stroke: any trained MNIST network says 1
        assert len({tuple(v.values()) for v in predicted.values()}) == 3
        for view, shown in (("Why: saliency", "Red pixels raise the score"), ("Fool it: attacks", "The smallest ε"),
                            ("Inside: the layers", "that matter most here")):
            page.get_by_text(view, exact=True).click()
            expect(page.get_by_text(shown).first).to_be_visible()
            _wait_until_idle(page)
            _assert_no_error_on_page(playwright_api, page, "Playground")
            page.screenshot(path=ARTIFACTS / f"playground-default-run-{view.split(':')[0].lower()}.png",
                            full_page=True)
        (ARTIFACTS / "playground-default-run.json").write_text(json.dumps(predicted, indent=1))
        browser.close()


def test_the_playground_classifies_drawings_with_a_run_reloaded_from_the_history(app_url, real_mnist_dir):
    """Softmax regression trained here for one epoch and saved to the run history, reloaded on the Runs page:
    the Playground draws its template contributions for a drawn digit."""
    from core.data.locate import load_mnist
    from core.data.splits import SplitConfig, make_splits
    from core.training.config import TrainConfig
    from core.training.loop import train

    config = RunConfig(ModelConfig("linear"), SplitConfig(val_size=1000), TrainConfig(epochs=1, learning_rate=0.1,
                                                                                       optimizer="sgd"))
    splits = make_splits(load_mnist(real_mnist_dir), config.data)
    *_, last = train(config, splits)
    run = Run("from the history", config, MNIST_SPEC, params=last.params, status="finished")
    run.finish(splits)
    RunHistory(default_path()).save(run)
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        _reload_from_history(playwright_api, page, app_url, "from the history")
        page.get_by_role("link", name="Playground", exact=True).first.click()
        expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(re.compile("^from the history"))
        predicted = _draw_digits(playwright_api, page, "history-run")
        expect(page.get_by_text("Template matching: each pixel × its weight")).to_be_visible()
        (ARTIFACTS / "playground-history-run.json").write_text(json.dumps(predicted, indent=1))
        browser.close()


def test_a_slider_changes_the_setting_and_the_address_and_a_shared_address_restores_it(app_url):
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(90_000)
        page.goto(f"{app_url}/train")
        expect(page.get_by_role("heading", name="Train a network")).to_be_visible()
        box = page.get_by_label("Learning rate (exact value)")
        expect(box).to_have_value("0.001")
        thumb = page.get_by_test_id("stSlider").filter(has_text="Learning rate").get_by_role("slider")
        thumb.focus()
        page.keyboard.press("ArrowRight")  # 1e-3 → 2e-3, the next stop of the 1-2-5 scale
        expect(box).to_have_value("0.002")
        page.wait_for_url(re.compile(r"learning_rate=0\.002"))
        box.fill("0.03")
        box.press("Enter")
        expect(thumb).to_have_attribute("aria-valuetext", "0.02")  # the stop nearest 0.03 on a log scale
        page.wait_for_url(re.compile(r"learning_rate=0\.03"))
        shared = page.url
        page.screenshot(path=ARTIFACTS / "train-sliders.png")

        other = browser.new_page(viewport={"width": 1400, "height": 1800})  # another visitor opens the address
        other.goto(shared)
        expect(other.get_by_label("Learning rate (exact value)")).to_have_value("0.03")
        _assert_no_error_on_page(playwright_api, other, "Train")
        browser.close()
