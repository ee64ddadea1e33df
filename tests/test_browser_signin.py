"""Sign-in end to end in a real browser (see test_browser.py): the app with an [auth] section pointing at a local
OpenID Connect provider (oidc-provider-mock, started here on 127.0.0.1), the tiny MNIST and a history of its own.
Two students and a teacher sign in through the provider; each sees what they should, and Bob's attempts to remove
Alice's run, through the page and by a crafted widget value sent on the app's websocket, change nothing."""

from __future__ import annotations

import re
import secrets
import threading

import numpy as np
import pytest
from test_browser import (  # the browser helpers
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    TRAIN_TIMEOUT_MS,
    _assert_no_error_on_page,
    _free_port,
    _playwright,
    _require,
    _test_metric,
    _type_epochs,
    _wait_until_idle,
    serving,
)
from test_runs_page import saved_run

from core.data.splits import SplitConfig
from core.networks.base import ModelConfig
from core.store.history import RunHistory
from core.store.location import Viewer, default_path
from core.training.config import RunConfig
from dashboard.pages.runs import SELECTION_KEY

ALICE, BOB, TEACHER = "alice@school.example", "bob@school.example", "teacher@school.example"


@pytest.fixture
def oidc_provider() -> str:
    """A local OpenID Connect provider's address: any client is accepted, and its authorize page signs in whoever
    is typed as the subject (their e-mail, too)."""
    try:
        import werkzeug.serving
        from oidc_provider_mock import app as provider_app
    except ImportError:
        provider_app = None
    _require(provider_app is not None, "oidc-provider-mock is not installed (pip install -r requirements-dev.txt)")
    server = werkzeug.serving.make_server("127.0.0.1", 0, provider_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def signin_app(oidc_provider, data_env, tmp_path) -> str:
    """The app's address, served with sign-in through `oidc_provider` and Alice's, Bob's and the teacher's runs saved
    beforehand (Alice's own later comes from training)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(f"""
[auth]
redirect_uri = "{url}/oauth2callback"
cookie_secret = "{secrets.token_hex(32)}"
client_id = "digit-lab"
client_secret = "{secrets.token_hex(16)}"
server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"

[digit_lab]
teachers = ["{TEACHER}"]
""")
    config = RunConfig(model=ModelConfig(arch="linear"), data=SplitConfig(val_size=200))
    for owner, accuracy in ((ALICE, 0.91), (BOB, 0.92)):
        run = saved_run(f"{owner.split('@')[0]}'s seeded run", config, accuracy)
        run.test_confusion = np.diag(np.full(10, 100))
        RunHistory(default_path(), viewer=Viewer(owner)).save(run)
    with serving(data_env, port=port, options=("--secrets.files", str(secrets_file))) as (address, _):
        yield address


def _saved() -> dict[str, str | None]:
    """Every saved run's owner, by name (read without a viewer, as the server's administrator would)."""
    return {run.name: run.owner for run in RunHistory(default_path()).list()}


def _sign_in(expect, page, url: str, who: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/oauth2/authorize"))  # the provider's page: who signs in
    page.locator('input[name="sub"]').fill(who)
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_text(f"Signed in as {who}")).to_be_visible()


def _open_runs_page(expect, page) -> None:
    page.get_by_role("link", name="Runs", exact=True).first.click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    _wait_until_idle(page)


def _selector(page):
    """The Runs page's selector of runs (its text box)."""
    return page.get_by_test_id("stMultiSelect").filter(has_text="Select runs").locator("input")


def _runs_table(page):
    """The Runs page's table of saved runs (its accessible copy, which holds the cells as text)."""
    return page.locator('[data-testid="stDataFrame"] table[role="grid"]').first


def _run_options(page) -> list[str]:
    """The runs the Runs page's selector offers (its drop-down opened, then closed)."""
    _selector(page).click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return sorted(option for option in options if option != "Select all")


def _select(page, name: str) -> None:
    _selector(page).click()
    page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")
    _wait_until_idle(page)


def test_two_students_and_a_teacher_sign_in_and_see_what_they_should(signin_app):
    playwright_api = _playwright()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

        # Not signed in: the sign-in page, whatever page is asked for.
        page = browser.new_context(viewport={"width": 1400, "height": 2000}).new_page()
        page.set_default_timeout(90_000)
        page.goto(f"{signin_app}/runs")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.get_by_text("Page not found")).to_have_count(0)
        expect(page.get_by_role("link", name="Runs", exact=True)).to_have_count(0)
        expect(page.get_by_text("Saved run history")).to_have_count(0)
        page.screenshot(path=ARTIFACTS / "signin-1-page.png")

        # Alice: no path boxes; she trains a run, which is hers; she sees her runs only.
        _sign_in(expect, page, signin_app, ALICE)
        expect(page.get_by_text("Images per digit")).to_be_visible()
        expect(page.get_by_text("Data directory")).to_have_count(0)
        page.get_by_role("link", name="Train", exact=True).first.click()
        page.get_by_text("Softmax regression", exact=True).click()
        _type_epochs(playwright_api, page, 1)
        page.get_by_role("button", name="Train", exact=True).click()
        expect(_test_metric(page)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        _wait_until_idle(page)
        trained = next(name for name in _saved() if "seeded" not in name)
        assert _saved() == {"alice's seeded run": ALICE, "bob's seeded run": BOB, trained: ALICE}
        _open_runs_page(expect, page)
        expect(page.get_by_text("2 of 2 saved runs match")).to_be_visible()
        expect(page.get_by_text("Where the run history is stored")).to_have_count(0)
        expect(page.get_by_label("Owner")).to_have_count(0)
        expect(_runs_table(page)).to_contain_text("alice's seeded run")
        expect(_runs_table(page)).not_to_contain_text("owner")
        expect(_runs_table(page)).not_to_contain_text(ALICE)
        assert _run_options(page) == sorted(["alice's seeded run", trained])
        _assert_no_error_on_page(playwright_api, page, "Runs")
        page.screenshot(path=ARTIFACTS / "signin-2-alice-runs.png")
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="End session").click()  # the provider's own sign-out, then back
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.get_by_text(f"Signed in as {ALICE}")).to_have_count(0)

        # Bob, in a browser of his own: his run only; Alice's is neither listed nor found, nor removable by a
        # selection naming it, sent as the widget's value in the app's websocket messages.
        crafted = {"ids": None, "sent": 0}
        alice_seeded = next(run.run_id for run in RunHistory(default_path()).list() if run.owner == ALICE)

        def forward_crafted(ws) -> None:
            from streamlit.proto.BackMsg_pb2 import BackMsg

            server = ws.connect_to_server()

            def to_server(message) -> None:
                if crafted["ids"] is not None and isinstance(message, bytes):
                    back = BackMsg.FromString(message)
                    for widget in back.rerun_script.widget_states.widgets:
                        if widget.id.endswith(SELECTION_KEY):
                            widget.string_array_value.data[:] = crafted["ids"]
                            crafted["sent"] += 1
                    message = back.SerializeToString()
                server.send(message)

            ws.on_message(to_server)

        page = browser.new_context(viewport={"width": 1400, "height": 2000}).new_page()
        page.set_default_timeout(90_000)
        page.route_web_socket(re.compile(r"/_stcore/stream"), forward_crafted)
        _sign_in(expect, page, signin_app, BOB)
        _open_runs_page(expect, page)
        expect(page.get_by_text("1 of 1 saved runs match")).to_be_visible()
        expect(_runs_table(page)).to_contain_text("bob's seeded run")
        expect(_runs_table(page)).not_to_contain_text("alice")
        assert _run_options(page) == ["bob's seeded run"]
        _selector(page).click()
        page.keyboard.type("alice")  # searching the selector for Alice's run finds nothing to select
        expect(page.get_by_role("option", name=re.compile("alice", re.IGNORECASE))).to_have_count(0)
        page.keyboard.press("Escape")
        crafted["ids"] = [alice_seeded]
        _select(page, "bob's seeded run")  # sent as Alice's run id instead
        assert crafted["sent"] > 0
        # Bob's own run, had it been sent, would be selected with a Delete button: the server got Alice's id, and
        # dropped it (she is not among the runs Bob may see).
        expect(page.get_by_role("button", name=re.compile(r"^Delete"))).to_have_count(0)
        expect(page.get_by_text("alice", exact=False)).to_have_count(0)
        _assert_no_error_on_page(playwright_api, page, "Runs")
        page.screenshot(path=ARTIFACTS / "signin-3-bob-runs.png")
        assert _saved()["alice's seeded run"] == ALICE  # still there, still hers

        # The teacher: everyone's runs with their owners, a filter by owner, and any runs compared together.
        page = browser.new_context(viewport={"width": 1400, "height": 2000}).new_page()
        page.set_default_timeout(90_000)
        _sign_in(expect, page, signin_app, TEACHER)
        expect(page.get_by_text("(teacher: everyone's runs)")).to_be_visible()
        _open_runs_page(expect, page)
        expect(page.get_by_text("3 of 3 saved runs match")).to_be_visible()
        for text in ("owner", ALICE, BOB, trained):
            expect(_runs_table(page)).to_contain_text(text)
        assert _run_options(page) == sorted(["alice's seeded run", "bob's seeded run", trained])
        page.get_by_label("Owner").click()
        page.get_by_role("option", name=BOB).click()
        expect(page.get_by_text("1 of 3 saved runs match")).to_be_visible()
        page.get_by_label("Owner").click()
        page.get_by_role("option", name="Everyone").click()
        expect(page.get_by_text("3 of 3 saved runs match")).to_be_visible()
        _select(page, "alice's seeded run")
        _select(page, "bob's seeded run")
        expect(page.get_by_role("button", name="Reload into this session (2)")).to_be_visible()
        expect(page.locator(".js-plotly-plot").first).to_contain_text("bob's seeded run")  # overlaid with Alice's
        expect(page.locator(".js-plotly-plot").first).to_contain_text("alice's seeded run")
        expect(page.get_by_text("Only its owner can rename or delete a run.")).to_be_visible()
        _assert_no_error_on_page(playwright_api, page, "Runs")
        page.screenshot(path=ARTIFACTS / "signin-4-teacher-compares.png")
        browser.close()
    assert _saved() == {"alice's seeded run": ALICE, "bob's seeded run": BOB, trained: ALICE}
