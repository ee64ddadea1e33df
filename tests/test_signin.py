"""Sign-in (AppTest): with an [auth] section in the secrets every page is behind the sign-in page, each user sees
their own runs (a teacher everyone's), and the server's paths are the deployment's, whatever the session holds.
The real sign-in, against an OpenID Connect provider, is tested in a browser (test_browser_signin.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest
from test_runs_page import saved_run
from test_user_data import write_csv

from core.data.splits import SplitConfig
from core.networks.base import ModelConfig
from core.store.history import RunHistory
from core.store.location import Viewer, default_path
from core.training.config import RunConfig
from dashboard import access, state
from dashboard.pages.runs import CONFIRM_DELETE_KEY, SELECTION_KEY

TIMEOUT = 120
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "a test secret of some length",
        "client_id": "digit-lab", "client_secret": "not a secret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
ALICE, BOB, TEACHER = "alice@school.example", "bob@school.example", "Teacher@School.example"


def app(user: str | None, page: str | None = None, *, sign_in: bool = True) -> AppTest:
    """Home.py for `user` (None: not signed in), with sign-in configured unless `sign_in` is false."""
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    if sign_in:
        at.secrets = {"auth": AUTH, "digit_lab": {"teachers": [TEACHER.lower()]}}
    at.user = {"is_logged_in": False} if user is None else {"is_logged_in": True, "email": user, "sub": f"id-{user}"}
    if page:
        at.switch_page(f"dashboard/pages/{page}.py")
    return at


def labels(elements) -> list[str]:
    return [element.label for element in elements]


def texts(elements) -> str:
    return " ".join(str(element.value) for element in elements)


@pytest.fixture
def owned_runs(data_env) -> dict[str, str]:
    """One saved run each for Alice, Bob and the teacher; their ids by owner."""
    config = RunConfig(model=ModelConfig(arch="linear"), data=SplitConfig(val_size=200))
    ids = {}
    for owner, accuracy in ((ALICE, 0.91), (BOB, 0.92), (TEACHER, 0.93)):
        run = saved_run(f"{owner.split('@')[0].lower()}'s run", config, accuracy)
        run.test_confusion = np.diag(np.full(10, 100))
        RunHistory(default_path(), viewer=Viewer(owner)).save(run)
        ids[owner] = run.run_id
    return ids


def test_a_session_that_has_not_signed_in_sees_only_the_sign_in_page(data_env):
    at = app(None).run()
    assert not at.exception, at.exception
    assert labels(at.button) == ["Sign in"]
    assert "Sign in to train networks" in texts(at.markdown)
    assert not at.dataframe and not at.selectbox and not at.sidebar.caption  # not the Data page, and nobody is in
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # no other page in its navigation
        at.switch_page("dashboard/pages/runs.py")


def test_without_authlib_the_sign_in_page_says_what_to_install(data_env, monkeypatch):
    monkeypatch.setattr(access, "find_spec", lambda name: None)
    at = app(None).run()
    assert not at.exception and not at.button
    assert "pip install -r requirements-serve.txt" in at.error[0].value


def test_each_named_provider_gets_its_own_button(data_env):
    at = app(None)
    at.secrets = {"auth": {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": AUTH["cookie_secret"],
                           "school": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}}}
    at.run()
    assert labels(at.button) == ["Sign in with school"]


def test_a_signed_in_user_sees_who_they_are_and_can_sign_out(data_env):
    at = app(ALICE).run()
    assert not at.exception, at.exception
    assert f"Signed in as **{ALICE}**" == at.sidebar.caption[0].value
    assert "Loaded" in texts(at.success)  # the Data page
    next(b for b in at.button if b.label == "Sign out").click().run()
    assert not at.exception, at.exception
    assert labels(at.button) == ["Sign in"] and at.user == {"is_logged_in": False}


def test_without_a_verified_email_the_identity_is_the_subject(owned_runs):
    at = app(ALICE, "runs")
    at.user["email_verified"] = False  # anyone could claim this address: the provider's subject id names them
    at.run()
    assert f"Signed in as **id-{ALICE}**" == at.sidebar.caption[0].value
    assert "No saved runs yet" in texts(at.info)  # Alice's runs are not theirs


def test_a_student_lists_only_their_own_runs_and_never_sees_owners(owned_runs):
    at = app(ALICE, "runs").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["name"].tolist() == ["alice's run"] and "owner" not in table.columns
    assert "Owner" not in labels(at.selectbox)
    assert "1 of 1 saved runs match" in texts(at.caption)
    at = app(BOB, "runs").run()  # another session of the same process: nothing cached of Alice's reaches it
    assert at.dataframe[0].value["name"].tolist() == ["bob's run"]


def test_a_teacher_sees_everyones_runs_filters_by_owner_and_compares_across_students(owned_runs):
    at = app(TEACHER, "runs")
    at.secrets["digit_lab"]["teachers"] = TEACHER.lower()  # one teacher may be named without a list
    at.run()
    assert not at.exception, at.exception
    assert "(teacher: everyone's runs)" in at.sidebar.caption[0].value  # named in lower case, signed in otherwise
    table = at.dataframe[0].value
    assert sorted(table["owner"]) == sorted([ALICE, BOB, TEACHER])
    next(s for s in at.selectbox if s.label == "Owner").set_value(BOB).run()
    assert at.dataframe[0].value["name"].tolist() == ["bob's run"]
    next(s for s in at.selectbox if s.label == "Owner").set_value(None).run()

    at.multiselect(key=SELECTION_KEY).set_value([owned_runs[ALICE], owned_runs[BOB]]).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1 + 2  # both students' curves overlaid, and each confusion matrix
    assert set(at.dataframe[1].value.columns) == {"alice's run", "bob's run"}
    assert "Only its owner can rename or delete a run." in texts(at.caption)
    assert not [b for b in at.button if b.label.startswith(("Delete", "Rename"))]
    at.multiselect(key=SELECTION_KEY).set_value([owned_runs[TEACHER]]).run()
    assert [b for b in at.button if b.label.startswith("Delete")]  # their own run


def test_a_run_without_an_owner_is_seen_by_teachers_alone(owned_runs):
    config = RunConfig(model=ModelConfig(arch="linear"), data=SplitConfig(val_size=200))
    RunHistory(default_path()).save(saved_run("from the command line", config, 0.9))  # saved without signing in
    at = app(TEACHER, "runs").run()
    next(s for s in at.selectbox if s.label == "Owner").set_value("").run()
    assert at.dataframe[0].value["name"].tolist() == ["from the command line"]
    assert "(no sign-in)" in next(s for s in at.selectbox if s.label == "Owner").options
    at = app(ALICE, "runs").run()
    assert at.dataframe[0].value["name"].tolist() == ["alice's run"]


def test_a_crafted_selection_of_anothers_run_deletes_nothing(owned_runs):
    """Bob's session is made to hold Alice's run id where the Runs page's delete path reads it (the selection and
    the pending confirmation): the page offers nothing to delete and her run stays."""
    at = app(BOB, "runs")
    at.session_state[SELECTION_KEY] = [owned_runs[ALICE]]
    at.session_state[CONFIRM_DELETE_KEY] = [owned_runs[ALICE]]
    at.run()
    assert not at.exception, at.exception
    assert at.multiselect(key=SELECTION_KEY).value == []
    assert not [b for b in at.button if b.label in ("Yes, delete", "Rename") or b.label.startswith("Delete")]
    assert ALICE not in str(at.dataframe[0].value) and "alice" not in texts(at.markdown)
    assert owned_runs[ALICE] in {r.run_id for r in RunHistory(default_path()).list()}


@pytest.mark.parametrize("sign_in", [False, True])
def test_with_sign_in_a_crafted_server_path_is_ignored(owned_runs, tmp_path, sign_in):
    """Session values naming server paths (the data directory, another history file) are what the path boxes set;
    with sign-in the boxes are gone and the values are ignored: nothing is probed or created there."""
    probe, other_history = tmp_path / "probe", tmp_path / "elsewhere.sqlite3"
    at = app(ALICE, sign_in=sign_in)
    at.session_state[state.DATA_DIR_KEY] = str(probe)
    at.session_state[state.HISTORY_PATH_KEY] = str(other_history)
    at.run()
    assert not at.exception, at.exception
    assert ("Data directory" in labels(at.expander)) is not sign_in
    if sign_in:
        assert "Loaded" in texts(at.success) and not at.error  # the deployment's data ($MNIST_DATA_DIR)
    else:
        assert str(probe) in texts(at.error)  # local use: the folder asked for is where the data is looked for
    at.switch_page("dashboard/pages/runs.py").run()
    assert not at.exception, at.exception
    assert ("Where the run history is stored" in labels(at.expander)) is not sign_in
    assert other_history.exists() is not sign_in
    if sign_in:
        assert at.dataframe[0].value["name"].tolist() == ["alice's run"]  # the deployment's history


@pytest.mark.parametrize("uploaded", [True, False])
def test_with_sign_in_own_data_is_taken_from_an_upload_only(data_env, tmp_path, uploaded):
    """The own-data path an upload sets (inside this process's uploads folder) is used; the same file named anywhere
    else is not: with sign-in, the own-folder box is gone and such a value is ignored."""
    folder = state.uploads_dir() / "test-upload" if uploaded else tmp_path
    csv = write_csv(folder / "digits.csv", np.arange(60) % 3, np.full((60, 64), 7))
    at = app(ALICE)
    at.session_state[state.DATASET_KEY] = state.OWN_DATA
    at.session_state[state.OWN_PATH_KEY] = str(csv)
    try:
        at.run()
    finally:
        shutil.rmtree(state.uploads_dir() / "test-upload", ignore_errors=True)
    assert not at.exception, at.exception
    assert "Or the folder, zip or CSV on this machine" not in labels(at.text_input)
    if uploaded:
        assert "Loaded" in texts(at.success) and "digits.csv" in texts(at.success)
    else:
        assert not at.success and "Upload a zip or CSV to train on your own data." in texts(at.info)


def test_with_sign_in_the_search_page_uses_the_deployments_storage(data_env):
    at = app(ALICE, "search").run()
    assert not at.exception, at.exception
    assert "Study storage (SQLAlchemy URL)" not in labels(at.text_input)


def test_the_first_page_without_sign_in_imports_neither_authlib_nor_sqlalchemy(data_env):
    """Local use starts as quickly as before: Authlib (requirements-serve.txt) is not even imported, and SQLAlchemy
    (about 0.2 s) only once a page uses the run history."""
    script = ("import sys; from streamlit.testing.v1 import AppTest; "
              "at = AppTest.from_file('Home.py', default_timeout=120).run(); "
              "assert not at.exception and at.success, at.exception; "
              "print('authlib' in sys.modules, 'sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=os.environ, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "False"]
