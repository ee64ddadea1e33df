"""What the app benchmarks share (`load.py`, `first_page.py`): an app server started as `streamlit run Home.py`, its
memory as the kernel counts it, and a browser session that opens its pages (Playwright driving Debian's chromium)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 600_000  # a page or a run on a loaded 2-core machine
# Every page, and what it draws last once a session has a trained run (tests/test_browser.py checks the same).
LAST_DRAWN = {
    "Data": ("text", "LeNet-5:"), "Train": ("text", "Load a saved model file"),
    "Results": ("heading", "Download this run"), "Weights": ("button", "Save chart"),
    "Playground": ("text", "Nothing is drawn yet"), "Embeddings": ("text", "Click a point, or drag a box"),
    "Runs": ("text", "saved runs match"), "Gradient check": ("button", "Run the finite-difference check"),
    "Backprop timing": ("button", "Time them"), "Loss landscape": ("text", "Lowest grid cost"),
    "Reproduction": ("button", "Train selected presets"), "Overfitting": ("button", "Train all sizes"),
    "Sweep": ("button", "Train the sweep"), "Search": ("text", "No study in this storage yet"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`streamlit run Home.py` on a free local port, as a user starts it; returns the process and its address at
    once (`wait_until_serving` waits for it)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, f"http://127.0.0.1:{port}"


def wait_until_serving(server: subprocess.Popen, url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app server did not start (exit status {server.poll()})") from None
            time.sleep(0.05)


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=90)  # it waits for its sessions' trainings to be saved
    except subprocess.TimeoutExpired:
        server.kill()


@dataclass(frozen=True)
class Memory:
    """A process tree's memory in MB: resident (RSS, shared pages counted in each process) and proportional (PSS,
    shared pages divided among the processes sharing them)."""

    rss_mb: float
    pss_mb: float
    processes: int


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return children + [grandchild for child in children for grandchild in _descendants(child)]


def _kilobytes(path: str, field: str) -> int:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path(path).read_text(), re.MULTILINE)
    except OSError:  # the process ended meanwhile
        return 0
    return int(match.group(1)) if match else 0


def memory(pid: int) -> Memory:
    """The memory of process `pid` and its descendants (the app server starts none until a chart is exported)."""
    pids = [pid, *_descendants(pid)]
    return Memory(sum(_kilobytes(f"/proc/{p}/status", "VmRSS") for p in pids) / 1024,
                  sum(_kilobytes(f"/proc/{p}/smaps_rollup", "Pss") for p in pids) / 1024, len(pids))


def launch_browser(p, scratch: str, *, niced: bool):
    """Debian's chromium, headless. `niced`: at the lowest CPU priority (`nice -n 19`, every process and thread it
    starts inheriting it), as if the browsers ran on the visitors' own machines rather than on the server's cores."""
    executable = CHROMIUM
    if niced:
        executable = os.path.join(scratch, "niced-chromium")
        Path(executable).write_text(f'#!/bin/sh\nexec nice -n 19 {CHROMIUM} "$@"\n')
        os.chmod(executable, 0o755)
    return p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


def playwright():
    """The Playwright sync API (pip install -r requirements-dev.txt), or exit saying what is missing."""
    if not Path(CHROMIUM).exists():
        sys.exit(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        sys.exit("Playwright for Python is not installed (pip install -r requirements-dev.txt)")
    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    return sync_api


def wait_until_idle(page) -> None:
    """Wait until the session's script run is over (Streamlit shows its status widget while one runs)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=TIMEOUT_MS)


def data_page_rendered(sync_api, page) -> None:
    """Wait until the Data page has drawn everything: the gallery, the five statistics charts and its last line."""
    sync_api.expect(page.locator(".js-plotly-plot")).to_have_count(6)
    sync_api.expect(page.get_by_text("LeNet-5:")).to_be_visible()


def open_page(sync_api, page, name: str) -> None:
    """Follow the navigation link to page `name` and wait until it has drawn its last element and its script has
    ended; fail on an error shown."""
    link = page.get_by_role("link", name=name, exact=True).first
    link.click()
    sync_api.expect(link).to_have_attribute("aria-current", "page")
    kind, label = LAST_DRAWN[name]
    last = page.get_by_text(label) if kind == "text" else page.get_by_role(kind, name=label)
    sync_api.expect(last.first).to_be_visible()
    wait_until_idle(page)
    sync_api.expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def start_default_run(sync_api, page) -> None:
    """On the Train page: press Train with the page's settings (the default run unless changed)."""
    open_page(sync_api, page, "Train")
    page.get_by_role("button", name="Train", exact=True).click()
    sync_api.expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()


def wait_for_the_run(sync_api, page) -> str:
    """Wait until the run shows its test accuracy; returns the run's name."""
    sync_api.expect(page.locator('[data-testid="stMetric"]', has_text="Test accuracy")).to_be_visible()
    wait_until_idle(page)
    return page.get_by_role("heading", name=re.compile(r"^Latest run: ")).inner_text().removeprefix("Latest run: ")
