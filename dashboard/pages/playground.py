"""Playground: draw a digit (or upload one, or take a test image), see what the network receives, what each layer
makes of it, why it decided, how to fool it, and how it holds up under corruption."""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core.data.images import Ink, as_drawing, canvas_grey, read_grey
from core.data.preprocess import prepare
from core.errors import DataError, DigitLabError
from core.networks.base import pixel_images
from core.playground import attacks, inside, robustness, saliency
from core.summaries import confidence
from core.training.runs import Run
from dashboard import export, figures, state
from dashboard import playground_figures as pf
from dashboard.widgets import (
    DATA_HINT,
    DRAW,
    PLAYGROUND_SOURCE_KEY,
    PLAYGROUND_TEST_INDEX,
    TEST,
    UPLOAD,
    as_picture,
    one_of,
    pick_run,
    show_error,
)

CANVAS_VERSION_KEY = "playground.canvas_version"  # a new canvas key clears the drawing
CANVAS_SIDE = 280
INSIDE, WHY, FOOL, STRESS = "Inside", "Why", "Fool it", "Stress it"
STRONGEST = 8  # units shown with their contributions
REFUSED_SHOWN = 30
ACCURACY_TARGET = 0.99
SEVERITY_EXAMPLE = 0  # the test image shown at each severity

VANILLA, TIMES_INPUT, SMOOTHGRAD, INTEGRATED, OCCLUSION = (
    "Gradient", "Gradient × input", "SmoothGrad", "Integrated gradients", "Occlusion")


class Input(NamedTuple):
    """What the network is shown: `image` (pixels,), its true class when known, and a title for files."""

    image: np.ndarray
    label: int | None
    title: str


def _clear_canvas() -> None:
    st.session_state[CANVAS_VERSION_KEY] = st.session_state.get(CANVAS_VERSION_KEY, 0) + 1


def _pixelated(image: np.ndarray, side: int = 140) -> np.ndarray:
    """A small image enlarged by repeating its pixels, so the browser shows them as squares rather than a blur."""
    factor = max(1, -(-side // max(image.shape[:2])))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def prepared_input(run: Run, drawing: np.ndarray, title: str) -> Input | None:
    """A grey drawing prepared as MNIST's digits were, each step shown; None (with a note) when nothing is drawn."""
    try:
        steps = prepare(drawing, run.spec)
    except DataError as exc:
        st.info(str(exc))
        return None
    box = round(min(run.spec.height, run.spec.width) * 20 / 28)
    captions = [f"ink's box {steps.cropped.shape[1]}×{steps.cropped.shape[0]}", f"fitted into {box}×{box}",
                f"pasted into {run.spec.width}×{run.spec.height}", "centre of mass centred: the input"]
    for column, image, caption in zip(st.columns(4), steps, captions):
        column.image(_pixelated(image), clamp=True, caption=caption, width="stretch")
    return Input(steps.image.reshape(-1), None, title)


def drawn(run: Run) -> Input | None:
    left, right = st.columns([3, 4])
    with left:
        stroke = st.slider("Stroke width", 6, 40, key=state.kept("playground.stroke", 20))
        version = st.session_state.setdefault(CANVAS_VERSION_KEY, 0)
        canvas = st_canvas(stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000",
                           height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw", return_image_data=True,
                           key=f"playground.canvas.{version}")
        st.button("Clear", icon=":material/ink_eraser:", on_click=_clear_canvas, key="playground.clear")
    with right:
        st.caption("Draw a digit with the mouse (or a finger): the prediction follows each stroke. What the "
                   "network receives, step by step:")
        if canvas.image_data is None:
            st.info("Nothing is drawn yet: draw a digit on the black square.")
            return None
        return prepared_input(run, canvas_grey(canvas.image_data), "drawing")


def uploaded(run: Run) -> Input | None:
    upload = st.file_uploader("An image of a handwritten digit (a scan, a photo, a drawing)",
                              type=["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"],
                              key="playground.upload")
    ink = one_of("Ink", list(Ink), key="playground.ink", format_func={
        Ink.AUTO: "told from the border", Ink.DARK: "dark on light paper", Ink.LIGHT: "light on dark"}.get)
    if upload is None:
        return None
    try:
        drawing = as_drawing(read_grey(upload, upload.name), Ink(ink))
    except DataError as exc:
        st.error(str(exc))
        return None
    return prepared_input(run, drawing, upload.name)


def test_image(run: Run) -> Input | None:
    try:
        splits = state.splits_for(run.spec, run.config.data)
    except DigitLabError as exc:
        show_error(exc, DATA_HINT)
        return None
    count = len(splits.y_test)
    index = st.number_input(f"Test image index (0–{count - 1:,}; the Results page sends its mistakes here)", 0,
                            count - 1, key=state.kept(PLAYGROUND_TEST_INDEX, 0, lambda i: 0 <= i < count))
    label = int(splits.y_test[index])
    st.image(as_picture(splits.x_test[index], run.spec), width=96,
             caption=f"test image #{index}, a {run.spec.class_names[label]}")
    return Input(splits.x_test[index], label, f"test {index}")


def choose_input(run: Run) -> Input | None:
    grey = run.spec.channels == 1
    sources = [DRAW, UPLOAD, TEST] if grey else [TEST]
    if st.session_state.get(PLAYGROUND_SOURCE_KEY) not in sources:
        st.session_state.pop(PLAYGROUND_SOURCE_KEY, None)
    source = one_of("Input", sources, key=PLAYGROUND_SOURCE_KEY)
    if not grey:
        st.caption(f"{run.spec.name} has colour images: drawings and uploads are for grey images.")
    return {DRAW: drawn, UPLOAD: uploaded, TEST: test_image}[source](run)


def prediction(run: Run, passed: inside.Pass, given: Input) -> None:
    names, ranked = run.spec.class_names, passed.ranked
    top, runner_up = int(ranked[0]), int(ranked[1])
    words, bars = st.columns([1, 3])
    words.markdown(f"<div style='font-size:5rem;line-height:1.1;text-align:center'>{names[top]}</div>"
                   f"<div style='text-align:center'>{passed.probabilities[top]:.1%} sure; next "
                   f"{names[runner_up]} ({passed.probabilities[runner_up]:.1%})</div>", unsafe_allow_html=True)
    if given.label is not None:
        words.caption(f"True {run.spec.class_noun}: {names[given.label]} "
                      f"({'right' if given.label == top else 'wrong'})")
    with bars:
        export.chart(figures.probability_bars(passed.probabilities, given.label, top, run.spec), run_name=run.name,
                     what=f"probabilities {given.title}", key="playground.bars")


def layers(run: Run, passed: inside.Pass, given: Input) -> None:
    """Every layer's activations, then what the output layer's inputs contribute to the top two classes."""
    spec, names = run.spec, run.spec.class_names
    for name, maps in passed.maps.items():
        count, height, width = maps.shape
        st.caption(f"**{name}**: {count} feature maps of {height}×{width}")
        export.chart(figures.image_grid(maps, [f"map {m}" for m in range(count)], columns=min(count, 8),
                                        diverging=False),
                     run_name=run.name, what=f"{name} maps {given.title}", key=f"playground.maps.{name}")
    if passed.units:
        st.caption("Each hidden layer's units, one cell each, coloured by their activation for this input.")
        columns = st.columns(min(3, len(passed.units)))
        for i, (name, values) in enumerate(passed.units.items()):
            with columns[i % len(columns)]:
                export.chart(pf.unit_grid(inside.unit_grid(values), f"{name}: {len(values)} units"),
                             run_name=run.name, what=f"{name} units {given.title}", key=f"playground.units.{name}")
    top, runner_up = (int(c) for c in passed.ranked[:2])
    if passed.readout_layer == inside.PIXELS:
        st.subheader("Template matching: each pixel × its weight")
        st.caption(f"Each {spec.class_noun}'s score is the sum of its map plus a bias: red pixels vote for it, blue "
                   "against. The highest score wins.")
        per_class = passed.contributions.T.reshape(spec.num_classes, *spec.image_shape).sum(axis=-1)
        titles = [f"{name}: {logit:+.2f}" for name, logit in zip(names, passed.logits)]
        export.chart(figures.image_grid(per_class, titles, columns=min(5, spec.num_classes)), run_name=run.name,
                     what=f"pixel contributions {given.title}", key="playground.pixel_contributions")
        return
    layer = passed.readout_layer
    strongest = inside.strongest_inputs(passed.contributions, [top, runner_up], STRONGEST)
    st.subheader(f"The {len(strongest)} units of {layer} that matter most here")
    st.caption(f"Each unit's contribution to a class's score is its activation × its weight into that class; the "
               f"scores are their sums plus a bias: {names[top]} {passed.logits[top]:+.2f}, "
               f"{names[runner_up]} {passed.logits[runner_up]:+.2f}.")
    titles = [f"unit {u} ({passed.readout_inputs[u]:.2f})" for u in strongest]
    export.chart(pf.contribution_bars(passed.contributions[strongest][:, [top, runner_up]], titles,
                                      [f"→ {names[top]}", f"→ {names[runner_up]}"]),
                 run_name=run.name, what=f"{layer} contributions {given.title}", key="playground.contributions")
    weights = run.params.get(layer, {}).get("w")
    if weights is not None and weights.shape[0] == spec.num_pixels:  # a first hidden layer: incoming pixel weights
        export.chart(figures.image_grid(np.asarray(pixel_images(weights, spec))[strongest], titles,
                                        columns=len(strongest)),
                     run_name=run.name, what=f"{layer} incoming weights {given.title}", key="playground.incoming")


def _target(run: Run, passed: inside.Pass, key: str, label: str) -> int:
    names = run.spec.class_names
    options = ["predicted", *range(run.spec.num_classes)]
    chosen = st.selectbox(label, options, key=key, format_func=lambda c: (
        f"the predicted one ({names[int(passed.ranked[0])]})" if c == "predicted" else names[c]))
    return int(passed.ranked[0]) if chosen == "predicted" else int(chosen)


def why(run: Run, passed: inside.Pass, given: Input) -> None:
    """The chosen attribution method's map for the chosen class, over the input."""
    model, params, spec = run.model, run.params, run.spec
    settings, plot = st.columns([1, 3])
    with settings:
        target = _target(run, passed, "playground.saliency_class", "Explain the score of")
        method = st.radio("Method", [VANILLA, TIMES_INPUT, SMOOTHGRAD, INTEGRATED, OCCLUSION], key="playground.method")
        started = time.perf_counter()
        gap = None
        if method == VANILLA:
            attributions = saliency.vanilla_gradient(model, params, given.image, target)
        elif method == TIMES_INPUT:
            attributions = saliency.gradient_times_input(model, params, given.image, target)
        elif method == SMOOTHGRAD:
            samples = st.slider("Samples", 4, 256, key=state.kept("playground.sg_samples", 32))
            noise = st.slider("Noise (σ, of the pixel range)", 0.01, 0.5, step=0.01,
                              key=state.kept("playground.sg_noise", 0.15))
            attributions = saliency.smoothgrad(model, params, given.image, target, samples=samples, noise=noise)
        elif method == INTEGRATED:
            steps = st.slider("Steps along the path from black", 4, 512, key=state.kept("playground.ig_steps", 64))
            attributions, gap = saliency.integrated_gradients(model, params, given.image, target, steps=steps)
        else:
            side = min(spec.height, spec.width)
            patch = st.slider("Patch size", 1, side // 2, key=state.kept("playground.patch", 4))
            stride = st.slider("Stride", 1, side // 2, key=state.kept("playground.stride", 2))
            attributions = saliency.occlusion(model, params, given.image, target, patch=patch, stride=stride)
        st.caption(f"Computed in {1000 * (time.perf_counter() - started):.0f} ms.")
    with plot:
        name = spec.class_names[target]
        export.chart(pf.attribution(as_picture(given.image, run.spec).reshape(spec.height, spec.width, -1).mean(-1),
                                    attributions, f"{method} for {name}"),
                     run_name=run.name, what=f"{method} {name} {given.title}", key="playground.attribution")
        st.caption(f"Red pixels raise the score of {name}, blue ones lower it; white: no effect.")
        if gap is not None:
            st.markdown(f"Completeness: the attributions add up to **{attributions.sum():+.4f}**; the score of "
                        f"{name} for this input minus its score for a black image is **{gap:+.4f}** (difference "
                        f"{abs(attributions.sum() - gap):.1e}; more steps make it smaller).")


def fool(run: Run, passed: inside.Pass, given: Input) -> None:
    """FGSM / PGD on this input, the smallest ε that flips it, and the test set's accuracy against ε."""
    model, params, spec, names = run.model, run.params, run.spec, run.spec.class_names
    label = given.label if given.label is not None else int(passed.ranked[0])
    settings, result = st.columns([1, 3])
    with settings:
        eps = st.slider("ε (largest change of a pixel)", 0.0, 0.5, step=0.005, format="%.3f",
                        key=state.kept("playground.eps", 0.1))
        steps = st.slider("Steps (1: FGSM; more: PGD)", 1, 100, key=state.kept("playground.steps", 1))
        scale = st.slider("PGD step size (× ε / steps)", 0.5, 5.0, step=0.1, disabled=steps == 1,
                          key=state.kept("playground.step_scale", attacks.PGD_STEP_SCALE))
        goal = st.selectbox("Goal", ["untargeted", *range(spec.num_classes)], key="playground.attack_target",
                            format_func=lambda g: f"any wrong {spec.class_noun}" if g == "untargeted"
                            else f"make it say {names[g]}")
        target = None if goal == "untargeted" else int(goal)
    perturbed = attacks.attack(model, params, given.image, label, eps, steps=steps, target=target, step_scale=scale)[0]
    after = inside.one_pass(model, params, perturbed)
    with result:
        answer = int(after.ranked[0])
        start = "the true" if given.label is not None else "its current"
        verdict = ("fooled" if (answer == target if target is not None else answer != label) else "not fooled")
        st.markdown(f"Moving away from {start} answer **{names[label]}**"
                    f"{'' if target is None else f' towards **{names[target]}**'}: now **{names[answer]}** "
                    f"({after.probabilities[answer]:.1%}), {verdict}.")
        grey = spec.channels == 1
        if grey:
            export.chart(pf.attack_images(as_picture(given.image, run.spec), as_picture(perturbed, run.spec),
                                          ["input", f"perturbation (±{eps:g})", f"perturbed: {names[answer]}"]),
                         run_name=run.name, what=f"attack {given.title}", key="playground.attack_images")
        export.chart(figures.probability_bars(after.probabilities, given.label, answer, spec), run_name=run.name,
                     what=f"attacked probabilities {given.title}", key="playground.attack_bars")
        flip = attacks.smallest_flipping_eps(model, params, given.image, label, steps=steps, target=target,
                                             step_scale=scale)
        st.markdown("The smallest ε that fools it with these settings (bisection): " +
                    (f"**{flip:.3f}**" if flip is not None else "none up to 1: this attack cannot."))
    accuracy_against_eps(run, steps, scale)


def _comparable_runs(run: Run, key: str) -> list[Run]:
    """A choice of this session's runs on the same data as `run` (it first)."""
    same = {name: other for name, other in state.runs().items()
            if other.params is not None and other.spec == run.spec}
    chosen = st.multiselect("Runs to compare", list(same), default=[run.name], key=key)
    return [same[name] for name in chosen]


def _results(name: str) -> dict:
    return st.session_state.setdefault(f"playground.{name}", {})


def accuracy_against_eps(run: Run, steps: int, scale: float) -> None:
    st.subheader("Test accuracy against ε")
    chosen = _comparable_runs(run, "playground.eps_runs")
    text = st.text_input("ε values", "0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3", key="playground.eps_values")
    try:
        epsilons = sorted({float(v) for v in text.replace(" ", "").split(",") if v})
        if not epsilons or min(epsilons) < 0 or max(epsilons) > 1:
            raise ValueError
    except ValueError:
        st.error(f"ε values are numbers from 0 to 1 separated by commas, not '{text}'.")
        return
    kind = "FGSM" if steps == 1 else f"PGD, {steps} steps of {scale:g} ε/steps"
    stored = _results("eps_curves")
    setting = (tuple(epsilons), steps, scale if steps > 1 else None)
    missing = [r for r in chosen if (r.run_id, setting) not in stored]
    if missing and st.button(f"Attack the test set ({kind}; {len(missing)} run(s))", key="playground.eps_go"):
        try:
            splits = state.splits_for(run.spec, run.config.data)
        except DigitLabError as exc:
            show_error(exc, DATA_HINT)
            return
        bar = st.progress(0.0, text="Attacking the test images…")
        for i, other in enumerate(missing):
            stored[(other.run_id, setting)] = attacks.accuracy_under_attack(
                other.model, other.params, splits.x_test, splits.y_test, epsilons, steps=steps, step_scale=scale,
                progress=lambda done, i=i, other=other: bar.progress(
                    (i + done) / len(missing), text=f"Attacking the test images… ({other.name})"))
        bar.empty()
    curves = {r.name: stored[(r.run_id, setting)] for r in chosen
              if (r.run_id, setting) in stored}
    if curves:
        export.chart(pf.accuracy_against(epsilons, curves, "ε"), run_name=run.name, what=f"accuracy against eps {kind}",
                     key="playground.eps_chart")
    elif not missing:
        st.caption("Choose a run to compare.")


def stress(run: Run) -> None:
    """Robustness curves under corruptions, and the accuracy/coverage trade-off."""
    try:
        splits = state.splits_for(run.spec, run.config.data)
        evaluation = state.test_evaluation(run)
    except DigitLabError as exc:
        show_error(exc, DATA_HINT)
        return
    st.subheader("Robustness: test accuracy under corruptions")
    if run.spec.channels != 1:
        st.info("The corruptions are for grey images.")
    else:
        corruption_curves(run, splits)
    st.subheader("Knowing when not to answer")
    curve = robustness.coverage_curve(confidence(evaluation), evaluation.predictions == evaluation.labels)
    threshold = curve.threshold_for(ACCURACY_TARGET)
    marked = None if threshold is None else int(np.flatnonzero(curve.thresholds == threshold)[0])
    export.chart(pf.coverage(curve.coverage, curve.accuracy, curve.thresholds, marked, ACCURACY_TARGET),
                 run_name=run.name, what="accuracy against coverage", key="playground.coverage")
    if marked is None:
        st.info(f"No confidence threshold makes the answered test images {ACCURACY_TARGET:.0%} right.")
        return
    refused = np.flatnonzero(confidence(evaluation) < threshold)
    st.markdown(f"Answering only when at least **{threshold:.3f}** sure, the network answers "
                f"**{curve.coverage[marked]:.1%}** of the test images and is **{curve.accuracy[marked]:.2%}** right on "
                f"them; it declines {len(refused):,}. The least sure of those it declines:")
    shown = refused[np.argsort(confidence(evaluation)[refused], kind="stable")][:REFUSED_SHOWN]
    names = run.spec.class_names
    st.image([as_picture(splits.x_test[i], run.spec) for i in shown], width=64, caption=[
        f"{names[evaluation.labels[i]]}→{names[evaluation.predictions[i]]} {confidence(evaluation)[i]:.0%}"
        for i in shown])


def corruption_curves(run: Run, splits) -> None:
    chosen = _comparable_runs(run, "playground.robust_runs")
    corruptions = st.multiselect("Corruptions", list(robustness.Corruption), default=list(robustness.Corruption),
                                 format_func=robustness.CORRUPTION_LABELS.get, key="playground.corruptions")
    stored = _results("robustness")
    missing = [(r, c) for r in chosen for c in corruptions if (r.run_id, c) not in stored]
    if missing and st.button(f"Measure ({len(missing)} curve(s) of {len(robustness.SEVERITIES)} severities each)",
                             key="playground.robust_go"):
        bar = st.progress(0.0, text="Corrupting the test images…")
        for i, (other, corruption) in enumerate(missing):
            stored[(other.run_id, corruption)] = robustness.robustness_curve(
                other.model, other.params, splits.x_test, splits.y_test, corruption,
                progress=lambda done, i=i, c=corruption, other=other: bar.progress(
                    (i + done) / len(missing), text=f"{robustness.CORRUPTION_LABELS[c]} ({other.name})…"))
        bar.empty()
    curves = {robustness.CORRUPTION_LABELS[c]: {r.name: stored[(r.run_id, c)] for r in chosen
                                                if (r.run_id, c) in stored} for c in corruptions}
    curves = {c: by_run for c, by_run in curves.items() if by_run}
    if curves:
        export.chart(pf.robustness_curves(robustness.SEVERITIES, curves), run_name=run.name,
                     what="robustness curves", key="playground.robust_chart")
    if corruptions:
        severities = ", ".join(f"{s:g}" for s in robustness.SEVERITIES)
        st.caption(f"Test image #{SEVERITY_EXAMPLE} at each severity ({severities}):")
        example = splits.x_test[SEVERITY_EXAMPLE].reshape(1, run.spec.height, run.spec.width)
        for corruption in corruptions:
            st.image([robustness.corrupted(example, corruption, s)[0] for s in robustness.SEVERITIES], width=56,
                     clamp=True, caption=[f"{robustness.CORRUPTION_LABELS[corruption]} {s:g}"
                                          for s in robustness.SEVERITIES])


def main() -> None:
    st.title("Playground")
    run = pick_run()
    if run is None:
        return
    given = choose_input(run)
    passed = None if given is None else inside.one_pass(run.model, run.params, given.image)
    if passed is not None:
        prediction(run, passed, given)
    view = one_of("Look", [INSIDE, WHY, FOOL, STRESS], key="playground.view", format_func={
        INSIDE: "Inside: the layers", WHY: "Why: saliency", FOOL: "Fool it: attacks",
        STRESS: "Stress it: corruptions and confidence"}.get)
    if view == STRESS:
        stress(run)
    elif passed is None:
        st.caption("Draw a digit, upload an image or choose a test image to look at it this way.")
    elif view == INSIDE:
        layers(run, passed, given)
    elif view == WHY:
        why(run, passed, given)
    else:
        fool(run, passed, given)


main()
