"""Many sessions on one app server: its memory per session, and how soon a further session gets the Data page while
the others train.

    MNIST_DATA_DIR=/path/to/mnist python benchmarks/load.py [--sessions 8]

Starts `streamlit run Home.py` on the real MNIST (a run history and compile cache of its own, in a temporary
folder), then measures the server's memory (RSS and PSS of it and its children, from /proc): before the first
visitor, and after each of `--sessions` browser sessions, one after another, has trained the default run and opened
every page (the sessions stay open). Then all of them press Train at once, and while they train a further session
opens the Data page: the seconds until it first shows the data, and until it has drawn all of it. Last, the memory
once they have all finished.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from app_session import (
    LAST_DRAWN,
    TIMEOUT_MS,
    data_page_rendered,
    launch_browser,
    memory,
    open_page,
    playwright,
    start_default_run,
    start_server,
    stop_server,
    wait_for_the_run,
    wait_until_serving,
)

SETTLE_SECONDS = 3.0  # after a session's last page, before its memory is read


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def visit(sync_api, page, url: str) -> str:
    """A visitor's tour: the Data page, the default run trained, then every other page. Returns the run's name."""
    page.goto(url)
    data_page_rendered(sync_api, page)
    start_default_run(sync_api, page)
    name = wait_for_the_run(sync_api, page)
    for page_name in LAST_DRAWN:
        if page_name != "Train":
            open_page(sync_api, page, page_name)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--niced-browsers", action="store_true",
                        help="run the browsers at the lowest CPU priority, as if on the visitors' own machines")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    args = parser.parse_args()
    if not os.environ.get("MNIST_DATA_DIR"):
        parser.error("set MNIST_DATA_DIR to the folder holding MNIST")
    figures = {"sessions": args.sessions, "load_average_at_start": load_average()}

    with tempfile.TemporaryDirectory() as scratch:
        server, url = start_server({"DIGIT_LAB_HOME": scratch, "DIGIT_LAB_COMPILE_CACHE": f"{scratch}/xla"})
        try:
            wait_until_serving(server, url)
            time.sleep(SETTLE_SECONDS)
            before = memory(server.pid)
            figures["before_first_visitor"] = vars(before)
            print(f"before the first visitor: RSS {before.rss_mb:.0f} MB, PSS {before.pss_mb:.0f} MB", flush=True)
            sync_api = playwright()
            with sync_api.sync_playwright() as p:
                browser = launch_browser(p, scratch, niced=args.niced_browsers)
                pages, per_session, previous = [], [], before
                for number in range(1, args.sessions + 1):
                    page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
                    page.set_default_timeout(TIMEOUT_MS)
                    started = time.monotonic()
                    run = visit(sync_api, page, url)
                    seconds = time.monotonic() - started
                    time.sleep(SETTLE_SECONDS)
                    now = memory(server.pid)
                    per_session.append({"session": number, "run": run, "seconds": round(seconds, 1),
                                        "rss_mb": round(now.rss_mb), "pss_mb": round(now.pss_mb),
                                        "added_rss_mb": round(now.rss_mb - previous.rss_mb),
                                        "load_average": load_average()})
                    print(f"after session {number} ({run}, {seconds:.0f} s): RSS {now.rss_mb:.0f} MB "
                          f"(+{now.rss_mb - previous.rss_mb:.0f}), PSS {now.pss_mb:.0f} MB, load {load_average()}",
                          flush=True)
                    pages.append(page)
                    previous = now
                figures["per_session"] = per_session

                for page in pages:  # all of them train at once
                    start_default_run(sync_api, page)
                further = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
                started = time.monotonic()
                further.goto(url)
                sync_api.expect(further.get_by_text("Images per digit")).to_be_visible()
                first_shown = time.monotonic() - started
                data_page_rendered(sync_api, further)
                rendered = time.monotonic() - started
                trainings_running = sum(
                    page.get_by_role("button", name="Stop", exact=True).count() > 0 for page in pages)
                figures["further_session_data_page"] = {
                    "first_shown_seconds": round(first_shown, 2), "rendered_seconds": round(rendered, 2),
                    "trainings_running_when_rendered": trainings_running, "load_average": load_average()}
                print(f"a further session's Data page while {trainings_running} sessions train: data shown after "
                      f"{first_shown:.2f} s, all drawn after {rendered:.2f} s (load {load_average()})", flush=True)
                started = time.monotonic()
                for page in pages:
                    wait_for_the_run(sync_api, page)
                figures["concurrent_training_seconds"] = round(time.monotonic() - started + rendered, 1)
                time.sleep(SETTLE_SECONDS)
                after = memory(server.pid)
                figures["after_concurrent_training"] = vars(after)
                print(f"after {args.sessions} sessions trained at once: RSS {after.rss_mb:.0f} MB, "
                      f"PSS {after.pss_mb:.0f} MB", flush=True)
                browser.close()
        finally:
            stop_server(server)

    increments = [row["added_rss_mb"] for row in figures["per_session"][1:]]
    if increments:
        figures["further_session_added_rss_mb"] = {"mean": round(sum(increments) / len(increments)),
                                                   "max": max(increments)}
    if args.json:
        print(json.dumps(figures))
    else:
        first = figures["per_session"][0]
        print(f"\nfirst session added {first['added_rss_mb']} MB; each further session added "
              f"{figures['further_session_added_rss_mb']['mean']} MB on average, at most "
              f"{figures['further_session_added_rss_mb']['max']} MB" if increments else "")


if __name__ == "__main__":
    main()
