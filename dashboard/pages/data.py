"""Home / Data: the dataset to train on (a registered one, or the user's own images or CSV), where it came from,
how it is split, what it looks like, and the networks on offer."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core.data.formats import Dataset
from core.data.locate import cache_dir
from core.data.registry import REGISTRY, DatasetInfo, DatasetName, Layout
from core.data.splits import class_counts, default_split
from core.data.user_data import MAX_SIDE, Fit, ImageOptions, problems_text
from core.errors import DigitLabError
from core.networks.base import NETWORKS
from core.summaries import digit_gallery
from core.training.programs import describe_devices
from dashboard import access, export, figures, state
from dashboard.data_statistics import statistics_section
from dashboard.widgets import MISSING, TRAIN_PAGE, train_page_split

UPLOAD_KEY = "data_upload"
OWN_UPLOAD_KEY = "own_data_upload"
GALLERY_PER_DIGIT = 10


def _stored(files) -> Path:
    """The uploaded files written to a folder named by their content, under this app process's uploads folder
    (removed when the process ends): the same files share one folder (and one cached load), and uploading them again
    adds no copy."""
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
    return folder


def _save_uploaded_data() -> None:
    """Callback of the dataset uploader: the files it lists now become the data (a lone .npz, .mat or .zip file,
    by its own name, so that errors name it)."""
    files = st.session_state.get(UPLOAD_KEY) or []
    if not files:
        return
    folder = _stored(files)
    names = [Path(upload.name).name for upload in files]
    lone_file = names[0] if len(names) == 1 and Path(names[0]).suffix in (".npz", ".mat", ".zip") else None
    st.session_state[state.DATA_DIR_KEY] = str(folder / lone_file if lone_file else folder)


def _save_own_upload() -> None:
    """Callback of the own-data uploader: the zip or CSV becomes the user's data."""
    upload = st.session_state.get(OWN_UPLOAD_KEY)
    if upload is not None:
        st.session_state[state.OWN_PATH_KEY] = str(_stored([upload]) / Path(upload.name).name)


def _expected_files(info: DatasetInfo) -> str:
    if info.layout is Layout.EMNIST:
        return f"EMNIST's `{next(iter(info.downloads))}` (536 MB)"
    files = f"the four IDX files (`{'`, `'.join(info.files)}`, gzipped `.gz` or raw)"
    if info.name is DatasetName.MNIST:
        return f"{files}, **or** the course file `mnist_all.mat`, **or** the Keras file `mnist.npz`"
    return files


def load_with_progress(info: DatasetInfo) -> Dataset | None:
    """The dataset, with a progress bar while a first-use download runs; None (and what to do) if there is none."""
    bar = st.empty()

    def on_progress(name: str, done: int, total: int) -> None:
        fraction = done / total if total else 0.0
        bar.progress(min(fraction, 1.0), text=f"Downloading {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")

    try:
        data = state.dataset(state.data_source(), progress=on_progress)
    except DigitLabError as exc:
        bar.empty()
        st.error(f"**No {info.title} data could be loaded.** {exc}")
        st.markdown(
            f"Digit Lab looks, in order, in the **data directory** set on this page, in the folder named by the "
            f"`{info.env}` environment variable, in your cache folder (`{cache_dir(info)}`), and finally downloads "
            f"{info.title} from a public mirror. If you are offline, upload the data here instead: "
            f"{_expected_files(info)}."
        )
        st.file_uploader(f"{info.title} files", accept_multiple_files=True, key=UPLOAD_KEY,
                         on_change=_save_uploaded_data)
        return None
    bar.empty()
    return data


def own_data() -> Dataset | None:
    """The user's own data: a zip or CSV uploaded, or a folder named, and how its images are converted."""
    st.markdown("A **folder of class subfolders** (`digits/0/*.png`, `digits/1/*.png`…: the folder names are the "
                "classes), PNG, JPEG or BMP of any size, grey or colour; with `train/` and `test/` subfolders if you "
                "have a split, otherwise a seeded, stratified test set is held out. Or a **CSV** in Kaggle's Digit "
                "Recognizer layout (`label,pixel0,…,pixel783`). Upload either as a zip (or the CSV itself)"
                + ("." if access.sign_in_configured() else ", or name it on this machine."))
    st.file_uploader("A zip of your folder, or your CSV", type=["zip", "csv"], key=OWN_UPLOAD_KEY,
                     on_change=_save_own_upload)
    if not access.sign_in_configured():  # with sign-in, visitors name no paths on the server
        st.text_input("Or the folder, zip or CSV on this machine", key=state.OWN_PATH_KEY,
                      placeholder="/path/to/digits")
    defaults, keys = ImageOptions(), state.IMAGE_OPTION_KEYS
    for name in keys:
        state.kept("own." + name, getattr(defaults, name))
    size, colour, fit, held = st.columns(4)
    size.number_input("Height", 8, MAX_SIDE, key=keys["height"])
    size.number_input("Width", 8, MAX_SIDE, key=keys["width"])
    colour.checkbox("Colour", key=keys["colour"], help="Three channels: LeNet-5 convolves them, the dense networks "
                                                      "see them flattened. Off: grey.")
    fit.radio("Conversion", list(Fit), key=keys["fit"],
              format_func={Fit.RESIZE: "Resize", Fit.MNIST: "MNIST-style (handwriting)"}.get,
              help="Resize scales the whole image. MNIST-style fits the ink's box into 20×20 of 28×28 and puts its "
                   "centre of mass at the centre, as MNIST's digits were (grey only).")
    held.slider("Test fraction", 0.05, 0.5, step=0.05, key=keys["test_fraction"],
                help="Held out as the test set when the data brings no train/ and test/ folders (a CSV never does).")
    if state.own_data_path() is None:
        st.info(f"Upload a zip or CSV{'' if access.sign_in_configured() else ', or name a folder,'} to train on your "
                "own data.")
        return None
    try:
        with st.spinner("Reading your images..."):
            return state.dataset(state.data_source())
    except DigitLabError as exc:
        st.error(f"**Your data could not be loaded.** {exc}")
        return None


def described_split(mnist: Dataset) -> tuple[tuple[int, int] | None, str]:
    """The (training, validation) sizes to show, and a note saying whose split they are: the Train page's when it
    was opened in this session, else the default; None (and why) when that split cannot be made from this data."""
    which = "the split set on the Train page"
    try:  # the split a run of these settings trains on (made once, shared with that run)
        chosen = train_page_split()
        which = "the default split" if chosen is None else which
        split = state.splits(state.data_source(), chosen or default_split(len(mnist.train_labels)))
        sizes = len(split.y_train), len(split.y_val)
    except DigitLabError as exc:
        return None, f"No sizes: {which} cannot be made from this data. {exc}"
    return sizes, f"Sizes of {which}; set them in the Train page's Data settings."


def overview(mnist: Dataset) -> None:
    spec = mnist.spec
    train_counts = class_counts(mnist.train_labels, spec.num_classes)
    test_counts = class_counts(mnist.test_labels, spec.num_classes)
    st.success(f"Loaded **{spec.name}** from **{mnist.source}**"
               + (f" (checksums match the published {spec.name})." if mnist.verified else "."))
    if mnist.skipped:
        st.warning(f"**Skipped {len(mnist.skipped)}** (everything else is loaded): {problems_text(mnist.skipped)}.")
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


def dataset_choice() -> str:
    """The dataset picker; a registered dataset's description and citation below it."""
    options = [*DatasetName, state.OWN_DATA]
    titles = {name: REGISTRY[name].title for name in DatasetName} | {state.OWN_DATA: "Your own images or CSV"}
    choice = st.selectbox("Dataset", options, key=state.kept("dataset", DatasetName.MNIST, lambda c: c in options),
                          format_func=titles.get, help="Presets and the reproduction table always use MNIST.")
    if choice != state.OWN_DATA:
        info = REGISTRY[DatasetName(choice)]
        st.markdown(info.description)
        st.caption(f"Cite: {info.citation}")
    return choice


def main() -> None:
    st.title("Digit Lab")
    st.markdown("Train the classic handwritten-digit networks, watch them learn, and look inside them. "
                "**Start on the Train page**: the defaults train a good network in under half a minute.")
    st.page_link(TRAIN_PAGE, label="Go to Train", icon=":material/model_training:")
    choice = dataset_choice()
    if choice == state.OWN_DATA:
        loaded = own_data()
    else:
        info = REGISTRY[DatasetName(choice)]
        if not access.sign_in_configured():  # with sign-in, the deployment's data directory is used
            with st.expander("Data directory", expanded=state.data_dir() is not None):
                st.text_input(f"Folder (or file) holding {info.title}", key=state.DATA_DIR_KEY,
                              placeholder=f"${info.env} or the cache",
                              help=f"Leave empty to use ${info.env}, then your cache folder, then a download.")
        loaded = load_with_progress(info)
    if loaded is not None:
        overview(loaded)
        statistics_section(loaded)
    st.header("The networks")
    for network in NETWORKS.values():
        st.markdown(f"**{network.title}**: {network.description}")
    st.caption(f"Training runs on {describe_devices()}: one unless the Train page's Advanced settings split each "
               "batch across more.")


main()
