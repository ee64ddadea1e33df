"""How soon `streamlit run Home.py` shows its first page in a browser.

    MNIST_DATA_DIR=/path/to/mnist python benchmarks/first_page.py [--repeats 3]

Each repeat starts a fresh app server (a run history of its own; the browser is started beforehand and not
counted) and prints the seconds from starting the process until it answers, until the app's navigation shows (what
every page waits for), until its first page (Data) shows the data, and until that page has drawn everything, with
the server's memory then. The first start compiles the Data page's statistics into an empty compile cache; the
later ones load them from it, as a restarted app does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from app_session import (
    TIMEOUT_MS,
    data_page_rendered,
    launch_browser,
    memory,
    playwright,
    start_server,
    stop_server,
    wait_until_serving,
)


def first_page(sync_api, browser, env: dict[str, str]) -> dict:
    """Start the server and open its first page; the seconds to each stage and the server's memory."""
    page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    started = time.monotonic()
    server, url = start_server(env)
    try:
        wait_until_serving(server, url)
        serving = time.monotonic() - started
        page.goto(url)
        sync_api.expect(page.get_by_role("link", name="Train", exact=True).first).to_be_visible()
        navigation = time.monotonic() - started
        sync_api.expect(page.get_by_text("Images per digit")).to_be_visible()
        shown = time.monotonic() - started
        data_page_rendered(sync_api, page)
        rendered = time.monotonic() - started
        used = memory(server.pid)
    finally:
        page.context.close()
        stop_server(server)
    return {"serving_seconds": round(serving, 2), "navigation_seconds": round(navigation, 2),
            "data_shown_seconds": round(shown, 2), "rendered_seconds": round(rendered, 2),
            "rss_mb": round(used.rss_mb), "pss_mb": round(used.pss_mb),
            "load_average": " ".join(f"{value:.1f}" for value in os.getloadavg())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--niced-browsers", action="store_true",
                        help="run the browsers at the lowest CPU priority, as if on the visitors' own machines")
    parser.add_argument("--json", action="store_true", help="one JSON line per start instead of the table")
    args = parser.parse_args()
    if not os.environ.get("MNIST_DATA_DIR"):
        parser.error("set MNIST_DATA_DIR to the folder holding MNIST")
    sync_api = playwright()
    rows = []
    with tempfile.TemporaryDirectory() as scratch, sync_api.sync_playwright() as p:
        browser = launch_browser(p, scratch, niced=args.niced_browsers)
        for repeat in range(args.repeats):
            row = {"compile_cache": "empty" if repeat == 0 else "warm",
                   **first_page(sync_api, browser, {"DIGIT_LAB_HOME": scratch,
                                                    "DIGIT_LAB_COMPILE_CACHE": f"{scratch}/xla"})}
            rows.append(row)
            print(json.dumps(row) if args.json else
                  f"start {repeat + 1} ({row['compile_cache']} compile cache): serving after "
                  f"{row['serving_seconds']:.2f} s, navigation shown after {row['navigation_seconds']:.2f} s, "
                  f"data shown after {row['data_shown_seconds']:.2f} s, page drawn "
                  f"after {row['rendered_seconds']:.2f} s; RSS {row['rss_mb']} MB (load {row['load_average']})",
                  flush=True)
        browser.close()
    warm = [row["rendered_seconds"] for row in rows[1:]]
    if warm and not args.json:
        print(f"median with a warm compile cache: page drawn after {statistics.median(warm):.2f} s")


if __name__ == "__main__":
    main()
