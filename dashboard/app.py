"""The multipage app: page config and navigation. Each page is a module of dashboard/pages."""

from pathlib import Path

import pandas  # noqa: F401 - imported before any session runs: plotly looks pandas up in sys.modules without
import streamlit as st  # the import lock, so a first import in one session's thread breaks a chart in another

from core.training import compile_cache
from dashboard import access, state

PAGES_DIR = Path(__file__).parent / "pages"
ASSETS_DIR = Path(__file__).parent.parent / "assets"


def pages() -> dict[str, list[st.Page]]:
    """The app's pages, by section."""
    return {
        "Digit Lab": [
            st.Page(PAGES_DIR / "data.py", title="Data", icon=":material/dataset:", default=True),
            st.Page(PAGES_DIR / "train.py", title="Train", icon=":material/model_training:"),
            st.Page(PAGES_DIR / "results.py", title="Results", icon=":material/analytics:"),
            st.Page(PAGES_DIR / "weights.py", title="Weights", icon=":material/grid_view:"),
            st.Page(PAGES_DIR / "playground.py", title="Playground", icon=":material/draw:"),
            st.Page(PAGES_DIR / "embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
            st.Page(PAGES_DIR / "runs.py", title="Runs", icon=":material/history:"),
        ],
        "Gradient lab": [
            st.Page(PAGES_DIR / "gradient_check.py", title="Gradient check", icon=":material/function:"),
            st.Page(PAGES_DIR / "backprop_timing.py", title="Backprop timing", icon=":material/timer:"),
            st.Page(PAGES_DIR / "landscape.py", title="Loss landscape", icon=":material/landscape:"),
        ],
        "Experiments": [
            st.Page(PAGES_DIR / "reproduce.py", title="Reproduction", icon=":material/fact_check:"),
            st.Page(PAGES_DIR / "overfitting.py", title="Overfitting", icon=":material/stacked_line_chart:"),
            st.Page(PAGES_DIR / "sweep.py", title="Sweep", icon=":material/tune:"),
            st.Page(PAGES_DIR / "search.py", title="Search", icon=":material/travel_explore:"),
        ],
    }


def main() -> None:
    st.set_page_config(page_title="Digit Lab", page_icon=str(ASSETS_DIR / "icon.svg"), layout="wide")
    st.logo(str(ASSETS_DIR / "logo.svg"), icon_image=str(ASSETS_DIR / "icon.svg"), size="large")
    app_pages = pages()
    if access.sign_in_configured():
        if not access.signed_in():  # a deployment with sign-in: nothing but the sign-in page until then
            paths = [page.url_path for section in app_pages.values() for page in section if page.url_path]
            st.navigation(access.sign_in_pages(paths), position="hidden").run()
            return
        access.signed_in_sidebar(access.viewer())
    compile_cache.enable()  # before any page compiles: programs compiled by an earlier app start load from disk
    state.clean_uploads()
    state.save_trainings_at_exit()
    state.keep_settings()
    state.settle_interrupted_runs()
    st.navigation(app_pages).run()
