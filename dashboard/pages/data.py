"""Home / Data: where MNIST came from, how it is split, what it looks like, and the networks on offer."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import download
from core.data.formats import Dataset
from core.data.splits import class_counts, default_split
from core.errors import DigitLabError
from core.networks.base import NETWORKS
from core.summaries import digit_gallery
from dashboard import export, figures, state
from dashboard.widgets import MISSING, TRAIN_PAGE, train_page_split

UPLOAD_KEY = "data_upload"
GALLERY_PER_DIGIT = 10


def _save_uploaded_data() -> None:
    """Callback of the data uploader: the files it lists now become the data (a lone .npz or .mat file, by its own
    name, so that errors name it). They are written to a folder named by their content, under this app process's
    uploads folder (removed when the process ends): the same files share one folder (and one cached load), and
    uploading them again adds no copy."""
    files = st.session_state.get(UPLOAD_KEY) or []
    if not files:
        return
    contents = {Path(upload.name).name: upload.getvalue() for upload in files}
    digest = hashlib.sha256()
    for name in sorted(contents):
        digest.update(name.encode() + b"\0" + hashlib.sha256(contents[name]).digest())
    uploads = state.uploads_dir()
    folder = uploads / digest.hexdigest()[:16]
    if not folder.is_dir():
        uploads.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=uploads, prefix=".partial-"))
        for name, data in contents.items():
            (staging / name).write_bytes(data)
        try:
            staging.rename(folder)  # whole or not at all; another session may have just written the same
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    names = list(contents)
    lone_file = names[0] if len(names) == 1 and Path(names[0]).suffix in (".npz", ".mat") else None
    st.session_state[state.DATA_DIR_KEY] = str(folder / lone_file if lone_file else folder)


def load_with_progress() -> Dataset | None:
    """The dataset, with a progress bar while a first-use download runs; None (and what to do) if there is none."""
    bar = st.empty()

    def on_progress(name: str, done: int, total: int) -> None:
        fraction = done / total if total else 0.0
        bar.progress(min(fraction, 1.0), text=f"Downloading {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")

    try:
        mnist = state.dataset(state.data_dir(), progress=on_progress)
    except DigitLabError as exc:
        bar.empty()
        st.error(f"**No MNIST data could be loaded.** {exc}")
        st.markdown(
            "Digit Lab looks, in order, in the **data directory** set on this page, in the folder named by the "
            "`MNIST_DATA_DIR` environment variable, in your cache folder "
            f"(`{download.default_cache_dir()}`), and finally downloads MNIST from a public mirror. "
            "If you are offline, upload the data here instead: the four IDX files "
            f"(`{'`, `'.join(download.MNIST_FILES)}`, gzipped `.gz` or raw), **or** the course file "
            "`mnist_all.mat`, **or** the Keras file `mnist.npz`."
        )
        st.file_uploader("MNIST files", accept_multiple_files=True, key=UPLOAD_KEY, on_change=_save_uploaded_data)
        return None
    bar.empty()
    return mnist


def described_split(mnist: Dataset) -> tuple[tuple[int, int] | None, str]:
    """The (training, validation) sizes to show, and a note saying whose split they are: the Train page's when it
    was opened in this session, else the default; None (and why) when that split cannot be made from this data."""
    which = "the split set on the Train page"
    try:  # the split a run of these settings trains on (made once, shared with that run)
        chosen = train_page_split()
        which = "the default split" if chosen is None else which
        split = state.splits(state.data_dir(), chosen or default_split(len(mnist.train_labels)))
        sizes = len(split.y_train), len(split.y_val)
    except DigitLabError as exc:
        return None, f"No sizes: {which} cannot be made from this data. {exc}"
    return sizes, f"Sizes of {which}; set them in the Train page's Data settings."


def overview(mnist: Dataset) -> None:
    spec = mnist.spec
    train_counts = class_counts(mnist.train_labels, spec.num_classes)
    test_counts = class_counts(mnist.test_labels, spec.num_classes)
    st.success(f"Loaded from **{mnist.source}**"
               + (" (checksums match the published MNIST)." if mnist.verified else "."))
    sizes, which = described_split(mnist)
    cols = st.columns(4)
    cols[0].metric("Training images", MISSING if sizes is None else f"{sizes[0]:,}",
                   help=f"Of the {len(mnist.train_labels):,} training images, those not held out for validation "
                        "(or the subset of them chosen on the Train page).")
    cols[1].metric("Validation images", MISSING if sizes is None else f"{sizes[1]:,}",
                   help="Held out of the training images, stratified and seeded; set its size on the Train page.")
    cols[2].metric("Test images", f"{len(mnist.test_labels):,}", help="Only used to report the final accuracy.")
    channels = f" × {spec.channels}" if spec.channels > 1 else ""
    cols[3].metric("Image size", f"{spec.height} × {spec.width}{channels}",
                   help="Grey levels 0-255, scaled to [0, 1] for training.")
    st.caption(which)
    table, gallery = st.columns([1, 2])
    with table:
        st.subheader(f"Images per {spec.class_noun}")
        st.dataframe(pd.DataFrame({spec.class_noun: spec.class_names, f"train (all {len(mnist.train_labels):,})":
                                   train_counts, "test": test_counts}), hide_index=True)
    with gallery:
        missing = [name for name, count in zip(spec.class_names, train_counts) if count < GALLERY_PER_DIGIT]
        st.subheader(f"{GALLERY_PER_DIGIT} random training examples of each {spec.class_noun}"
                     + (f" (fewer of {', '.join(missing)}: blank cells)" if missing else ""))
        images = mnist.train_images if mnist.train_images.ndim == 3 else mnist.train_images.mean(axis=-1)
        tile = digit_gallery(images, mnist.train_labels, GALLERY_PER_DIGIT, spec.num_classes)
        export.chart(figures.digit_gallery(tile, spec), run_name=spec.name, what="examples", key="gallery")


def main() -> None:
    st.title("Digit Lab")
    st.markdown("Train the classic MNIST networks, watch them learn, and look inside them. "
                "**Start on the Train page**: the defaults train a good network in under half a minute.")
    st.page_link(TRAIN_PAGE, label="Go to Train", icon=":material/model_training:")
    with st.expander("Data directory", expanded=state.data_dir() is not None):
        st.text_input("Folder (or file) holding MNIST", key=state.DATA_DIR_KEY,
                      placeholder="$MNIST_DATA_DIR or the cache",
                      help="Leave empty to use $MNIST_DATA_DIR, then your cache folder, then a download.")
    loaded = load_with_progress()
    if loaded is not None:
        overview(loaded)
    st.header("The networks")
    for network in NETWORKS.values():
        st.markdown(f"**{network.title}**: {network.description}")


main()
