"""Saving what the app shows: charts (plotly toolbar, offline HTML, PNG/SVG via kaleido), a run's curves,
metrics and model file, and loading a saved model file back as a run.

Exported file names say what they hold: `<run>_<chart>_<date>.<ext>`.
"""

from __future__ import annotations

import atexit
import re
import threading
import warnings
from datetime import date
from functools import lru_cache, partial
from pathlib import Path

import kaleido
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

from core.errors import DigitLabError
from core.store.checkpoint import load_model, model_bytes
from core.training.runs import Run
from core.training.status import RunStatus
from dashboard import state

UPLOAD_KEY = "model_upload"
UPLOAD_MESSAGE_KEY = "model_upload_message"
FILE_TEMPLATE = "plotly_white"  # saved charts' look (see `for_files`)
FILE_TITLE_BAND = 36  # pixels added above a saved chart for its title
DEFAULT_TOP_MARGIN = 100  # plotly's top margin where a figure sets none
NO_CHROME = ("PNG and SVG are drawn on the server by kaleido, which needs Chrome or Chromium: install it "
             "(`apt-get install chromium`, or `plotly_get_chrome`) and restart the app. HTML export works without it.")


def file_name(run_name: str, what: str, extension: str) -> str:
    """e.g. `mlp-784-300-10-relu_confusion-matrix_2026-01-31.png`."""
    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "digit-lab"
    return f"{slug(run_name)}_{slug(what)}_{date.today().isoformat()}.{extension}"


@lru_cache(maxsize=1)
def chrome_path() -> str | None:
    """The Chrome/Chromium kaleido will use, or None when there is none."""
    from choreographer.browsers.chromium import Chromium

    return Chromium.find_browser(skip_local=False)


@lru_cache(maxsize=1)
def _start_image_server() -> None:
    """One Chrome for all of kaleido's images, started at the first: each image then takes ~0.3 s instead of the
    ~3.5 s of starting a browser for it."""
    kaleido.start_sync_server(silence_warnings=True)
    atexit.register(kaleido.stop_sync_server, silence_warnings=True)


_IMAGE_SERVER_START = threading.Lock()  # sessions are threads: two first exports must not start two browsers


def image(fig: go.Figure, fmt: str) -> bytes:
    """A chart as PNG (at twice the screen's resolution) or SVG."""
    with _IMAGE_SERVER_START:
        _start_image_server()
    with warnings.catch_warnings():  # plotly passes browser options that a running server no longer takes
        warnings.filterwarnings("ignore", message="The kopts argument is ignored")
        return pio.to_image(fig, format=fmt, scale=2 if fmt == "png" else 1)


def for_files(fig: go.Figure, title: str | None = None) -> go.Figure:
    """A copy of a chart for saving, titled with `title` unless it has a title of its own (on the page the
    heading above a chart says what it shows; a file must say it itself). Streamlit's plotly template, the default
    once streamlit is imported, holds colour placeholders (#000001, ...) that only its web page resolves: in a file
    every trace would be black."""
    saved = go.Figure(fig).update_layout(template=FILE_TEMPLATE)
    if title and not saved.layout.title.text:
        top = saved.layout.margin.t if saved.layout.margin.t is not None else DEFAULT_TOP_MARGIN
        saved.update_layout(title=dict(text=title, x=0.01, xanchor="left", y=1, yref="container", yanchor="top",
                                       pad=dict(t=12), font_size=15),  # in a band of its own above the chart
                            margin_t=top + FILE_TITLE_BAND,
                            height=saved.layout.height + FILE_TITLE_BAND if saved.layout.height else None)
    return saved


def chart(fig: go.Figure, *, run_name: str, what: str, key: str, on_select=None, selection_mode="points"):
    """Show a plotly figure with its toolbar (camera button saves a PNG named like the downloads) and a
    "Save chart" menu with offline HTML, PNG and SVG downloads. Returns the chart's selection state when
    `on_select` is given (selecting by `selection_mode`: "points", "box", "lasso" or a tuple of them)."""
    stem = file_name(run_name, what, "x")[:-2]
    config = {"displaylogo": False, "toImageButtonOptions": {"filename": stem, "scale": 2}}
    selection = {} if on_select is None else {"on_select": on_select, "selection_mode": selection_mode}
    event = st.plotly_chart(fig, key=key, config=config, **selection)
    saved = for_files(fig, f"{what[:1].upper()}{what[1:]} · {run_name}")
    with st.popover("Save chart", icon=":material/download:"):
        st.download_button("HTML (interactive, works offline)", lambda: saved.to_html(include_plotlyjs=True),
                           file_name=f"{stem}.html", mime="text/html", on_click="ignore", key=f"{key}.html")
        if chrome_path() is None:
            st.caption(NO_CHROME)
        else:
            for fmt, mime in (("png", "image/png"), ("svg", "image/svg+xml")):
                st.download_button(fmt.upper(), partial(image, saved, fmt), file_name=f"{stem}.{fmt}", mime=mime,
                                   on_click="ignore", key=f"{key}.{fmt}")
    return event


def run_downloads(run: Run, key: str) -> None:
    """Download buttons for a run's curves (CSV), config + metrics + curves (JSON) and its model file."""
    columns = st.columns(3)
    columns[0].download_button("Curves (CSV)", run.curves_csv(), file_name=file_name(run.name, "curves", "csv"),
                               mime="text/csv", on_click="ignore", key=f"{key}.csv")
    columns[1].download_button("Config and metrics (JSON)", run.to_json(),
                               file_name=file_name(run.name, "run", "json"), mime="application/json",
                               on_click="ignore", key=f"{key}.json")
    columns[2].download_button("Trained model (.npz)", lambda: model_bytes(
                                   run.params, run.config, run.spec, opt_state=run.opt_state,
                                   step=run.steps_done if run.history else None),
                               file_name=file_name(run.name, "model", "npz"), mime="application/octet-stream",
                               on_click="ignore", key=f"{key}.npz", disabled=run.params is None,
                               help="Plain arrays plus the run's config and optimiser state; load it back below, or "
                                    "with the CLI (`train --resume FILE` continues it).")


def _load_uploaded_model() -> None:
    """Callback of the model uploader: turn the file into a run in this session, or keep the error."""
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        return
    try:
        params, config, spec = load_model(upload.getvalue())
        run = Run(state.unique_name(Path(upload.name).stem), config, spec, params=params, status=RunStatus.LOADED)
        run.finish(state.splits_for(spec, config.data))
    except DigitLabError as exc:
        st.session_state[UPLOAD_MESSAGE_KEY] = ("error", f"{upload.name} was not loaded: {exc}")
        return
    state.keep_run(run)
    st.session_state[state.SELECTED_RUN_KEY] = run.name
    st.session_state[UPLOAD_MESSAGE_KEY] = ("success", f"Loaded {upload.name} as run **{run.name}** "
                                                       f"(test accuracy {run.test_accuracy:.2%}).")


def model_uploader() -> None:
    """Upload a model file saved by Digit Lab; it becomes a run of this session."""
    st.file_uploader("Load a saved model file (.npz)", type=["npz"], key=UPLOAD_KEY, on_change=_load_uploaded_model,
                     help="A file from the 'Trained model (.npz)' button or `python -m core train --save`.")
    kind, message = st.session_state.pop(UPLOAD_MESSAGE_KEY, (None, None))
    if kind == "error":
        st.error(message)
    elif kind == "success":
        st.success(message)
