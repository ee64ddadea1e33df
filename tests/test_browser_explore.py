"""In a real browser (see test_browser.py): the Data page's statistics, and the Embeddings page's map of a trained
softmax regression, where dragging a box over points lists those digits."""

from __future__ import annotations

import re

from test_browser import (  # the app fixture and the browser helpers
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    TRAIN_TIMEOUT_MS,
    _assert_no_error_on_page,
    _open_train_page,
    _playwright,
    _test_metric,
    _wait_until_idle,
    app_server,  # noqa: F401 - a fixture (app_url's)
    app_url,  # noqa: F401 - a fixture
)


def test_statistics_then_a_box_selection_on_the_embedding_map(app_url):  # noqa: F811 - the fixture
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        _open_train_page(playwright_api, page, app_url, epochs=1)
        page.get_by_role("link", name="Data", exact=True).first.click()
        expect(page.get_by_role("heading", name="What the images hold")).to_be_visible()
        expect(page.get_by_text(re.compile(r"8 of 8 are digit 7|[0-7] of 8 are digit 7"))).to_be_visible()
        _assert_no_error_on_page(playwright_api, page, "Data")
        page.get_by_role("heading", name="What the images hold").scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "8-data-statistics.png", full_page=True)

        page.get_by_role("link", name="Train", exact=True).first.click()
        page.get_by_role("button", name="Train", exact=True).click()
        expect(_test_metric(page)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        _wait_until_idle(page)

        page.get_by_role("link", name="Embeddings", exact=True).first.click()
        expect(page.get_by_text("Click a point, or drag a box")).to_be_visible()
        chart = page.locator(".js-plotly-plot").first
        expect(chart.locator(".legendtext", has_text="misclassified")).to_be_visible()
        _assert_no_error_on_page(playwright_api, page, "Embeddings")
        chart.scroll_into_view_if_needed()
        box = chart.locator(".nsewdrag").first.bounding_box()  # the plot area
        left, top = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.45
        page.mouse.move(left, top)
        page.mouse.down()
        page.mouse.move(left + box["width"] * 0.15, top + box["height"] * 0.15, steps=8)
        page.mouse.up()
        summary = page.get_by_text(re.compile(r"^[0-9,]+ selected \([0-9,]+ misclassified; most often"))
        expect(summary).to_be_visible()
        selected = int(summary.inner_text().split(" ")[0].replace(",", ""))
        captions = page.get_by_text(re.compile(r"^[0-9]→[0-9]\u00a0·\u00a0[0-9]+% #[0-9]+$"))
        assert selected > 0
        expect(captions).to_have_count(min(selected, 60))
        page.screenshot(path=ARTIFACTS / "9-embeddings-selection.png", full_page=True)
        browser.close()
