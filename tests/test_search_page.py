"""AppTest of the Search page: a 2-trial search on the tiny synthetic MNIST, its live table and Optuna's plots."""

from __future__ import annotations

from conftest import REPO
from streamlit.testing.v1 import AppTest

from core.search.study import RUN_ID_ATTR, open_storage, open_study, storage_url
from core.store.history import RunHistory

TIMEOUT = 300


def search_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    at.switch_page("dashboard/pages/search.py")
    return at.run()


def test_a_two_trial_search_draws_the_study_and_promotes_a_trial(data_env):
    at = search_page()
    assert not at.exception and not at.error
    assert at.title[0].value == "Search"
    widgets = {w.key: w for kind in ("number_input", "text_input", "multiselect", "slider", "selectbox", "radio")
               for w in getattr(at, kind)}
    for name, value in {"study": "page-study", "train_size": 400, "val_size": 200, "epochs": 1, "width_low": 8,
                        "width_high": 16, "depth": (1, 1), "batch_sizes": [32], "amount": 2, "pruner": "none"}.items():
        widgets[f"setting.search.{name}"].set_value(value)
    next(b for b in at.button if b.label == "Run the search").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    history = RunHistory()
    study, _ = open_study(open_storage(storage_url(history)), "page-study")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    saved = {run.run_id: run for run in history.list()}
    assert {t.user_attrs[RUN_ID_ATTR] for t in study.trials} <= set(saved)
    assert all(run.name.startswith("page-study #") for run in saved.values())

    table = at.dataframe[0].value
    assert list(table["trial"]) == [0, 1] and set(table["state"]) == {"complete"}
    titles = [h.value for h in at.subheader]
    for title in ("Optimisation history", "Parallel coordinates", "Hyperparameter importances"):
        assert title in titles
    assert len(at.get("plotly_chart")) == 4  # history, intermediate values, parallel coordinates, importances

    next(b for b in at.button if b.label == "Promote to run").click().run()
    assert not at.exception and not at.error
    best = study.best_trial
    promoted = next(iter(at.session_state["runs"].values()))
    assert promoted.run_id == best.user_attrs[RUN_ID_ATTR] and promoted.params is not None


def test_a_bad_storage_url_is_one_error_line(data_env):
    at = search_page()
    next(w for w in at.text_input if w.key == "setting.search.storage").set_value("nosuchdb://x").run()
    assert not at.exception
    assert "Cannot open the study storage nosuchdb://x" in at.error[0].value


def test_the_page_shows_a_study_that_a_worker_fills(data_env):
    from core.data.locate import load_mnist
    from core.data.splits import SplitConfig, make_splits
    from core.search.space import Budget, SearchSetup, SearchSpace
    from core.search.study import search
    setup = SearchSetup(SearchSpace(width=(8, 8), depth=(1, 1), batch_sizes=(32,)), SplitConfig(200, 400), epochs=1)
    history = RunHistory()
    storage = open_storage(storage_url(history))
    study, _ = open_study(storage, "from-a-worker", setup)
    open_study(storage, "another", setup)
    search(study, setup, make_splits(load_mnist(), setup.data), history, Budget(trials=1))
    at = search_page()
    picker = next(w for w in at.selectbox if w.label == "Study")
    assert picker.options == ["from-a-worker", "another"] and picker.value == "another"
    assert "No trial of this study has completed yet" in at.info[0].value
    picker.set_value("from-a-worker").run()
    assert not at.exception and not at.error
    assert list(at.dataframe[0].value["trial"]) == [0]
    search(study, setup, make_splits(load_mnist(), setup.data), history, Budget(trials=1))  # the worker goes on
    next(b for b in at.button if b.label == "Refresh").click().run()
    assert list(at.dataframe[0].value["trial"]) == [0, 1]
    assert len(at.get("plotly_chart")) == 4


def test_following_a_study_redraws_it(data_env):
    from core.search.space import SearchSetup
    open_study(open_storage(storage_url(RunHistory())), "followed", SearchSetup())
    at = search_page()
    follow = next(w for w in at.toggle if w.label == "Follow")
    follow.set_value(True).run()
    assert not at.exception and not at.error and at.toggle[0].value
    assert "No trial of this study has completed yet" in at.info[0].value
