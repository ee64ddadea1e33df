"""Gradient check: the hand-derived backward pass against central differences, with planted bugs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import DigitLabError
from core.lab.backprop import BUGS, Bug, tensor_label
from core.lab.gradient_check import (
    DTYPES,
    PASS_RELATIVE_ERROR,
    GradientCheck,
    gradient_check,
    hand_vs_autodiff,
)
from core.lab.hand_training import HandTraining, train_by_hand
from dashboard import export, figures, state
from dashboard.gradlab import Batch, LabNetwork, pick_batch, pick_network
from dashboard.widgets import begin_action, cut_off, end_action, show_error

RESULT_KEY = "gradcheck.result"
TRAINING_KEY = "gradcheck.training"
INTERRUPTED = ("{what} was cut off before it finished (another button was pressed, or the page changed, while it "
               "ran): press its button again.")
NO_BUG = "none"  # (a selectbox shows None as no choice at all)

# the derivation by the number of hidden layers: softmax regression (0), the one-hidden-layer MLP (1)
FORWARD = {
    0: [r"Z = XW + b", r"P = \operatorname{softmax}(Z)", r"C = -\frac{1}{n}\sum_i \log P_{i,y_i}"],
    1: [r"Z_1 = XW_1 + b_1,\qquad A = \sigma(Z_1)", r"Z_2 = AW_2 + b_2,\qquad P = \operatorname{softmax}(Z_2)",
            r"C = -\frac{1}{n}\sum_i \log P_{i,y_i}"],
}
BACKWARD = {
    0: [r"\frac{\partial C}{\partial W} = \frac{1}{n} X^\top (P - Y)",
               r"\frac{\partial C}{\partial b} = \frac{1}{n}\sum_i (P - Y)_i"],
    1: [r"\Delta_2 = \frac{1}{n}(P - Y)",
            (r"\frac{\partial C}{\partial W_2} = A^\top \Delta_2,\qquad "
             r"\frac{\partial C}{\partial b_2} = \sum_i \Delta_{2,i}"),
            r"\Delta_1 = (\Delta_2 W_2^\top) \odot \sigma'(Z_1)",
            (r"\frac{\partial C}{\partial W_1} = X^\top \Delta_1,\qquad "
             r"\frac{\partial C}{\partial b_1} = \sum_i \Delta_{1,i}"),
            r"\tanh'(z) = 1 - \tanh^2(z)",
            r"\operatorname{sigmoid}'(z) = \operatorname{sigmoid}(z)\,(1 - \operatorname{sigmoid}(z))"],
}
CENTRAL = r"\frac{\partial C}{\partial w} \approx \frac{C(w + h) - C(w - h)}{2h}"

def check_settings(arch: str, depth: int, bugs: dict[str, Bug]) -> tuple[int | None, str | None]:
    """How many weights to check (None: every one) and the planted bug (None: none)."""
    left, middle, right = st.columns(3)
    check_all = left.toggle("Check every weight", key=state.kept(f"gradcheck.all.{arch}", depth == 0),
                            help="Off: a random sample of about k weights, spread over every tensor.")
    k = None if check_all else middle.number_input("k (weights to sample)", 10, 100_000,
                                                   key=state.kept("gradcheck.k", 1000))
    chosen_bug = right.selectbox("Planted bug", [NO_BUG, *bugs], key=state.kept(f"gradcheck.bug.{arch}", NO_BUG),
                                 format_func=lambda b: "none: the correct gradient" if b == NO_BUG else bugs[b].title)
    return k, None if chosen_bug == NO_BUG else chosen_bug


def derivation(depth: int, bugs: dict[str, Bug], bug: str | None) -> None:
    """The forward pass, central differences and the hand-derived gradients, with the planted bug."""
    forward_col, backward_col = st.columns(2)
    with forward_col:
        st.markdown("**Forward pass**")
        for line in FORWARD[depth]:
            st.latex(line)
        st.markdown("**Central differences**")
        st.latex(CENTRAL)
    with backward_col:
        st.markdown("**Hand-derived gradients**")
        for line in BACKWARD[depth]:
            st.latex(line)
        if bug:
            st.markdown(f"**Planted bug — {bugs[bug].title}:** {bugs[bug].description}")
            st.latex(bugs[bug].latex)


def run_check(network: LabNetwork, batch: Batch, k: int | None, bug: str | None) -> GradientCheck | None:
    """The hand gradient against jax.grad, and the button running the check; the check of these settings, if any."""
    x, y, batch_seed = batch
    settings = (network.identity, len(y), batch_seed, k, bug)
    agreement = hand_vs_autodiff(network.params, x, y, network.model)
    st.markdown("**Hand-derived (correct) vs `jax.grad`, float64:** " + ", ".join(
        f"{tensor_label(name, network.model)} {error:.1e}" for name, error in agreement.items()))
    if st.button("Run the finite-difference check", type="primary", key="gradcheck.check"):
        begin_action(RESULT_KEY)
        try:
            with st.status("Checking the gradient...", expanded=True) as status:
                bar = st.progress(0.0)
                result = gradient_check(network.params, x, y, network.model, weights=k, bug=bug,
                                        progress=lambda done, text: bar.progress(min(done, 1.0), text))
                status.update(label="Gradient checked", state="complete", expanded=False)
            st.session_state[RESULT_KEY] = (settings, result)
        except DigitLabError as exc:
            show_error(exc)
        end_action(RESULT_KEY)
    elif cut_off(RESULT_KEY):
        st.warning(INTERRUPTED.format(what="The finite-difference check"))
    stored = st.session_state.get(RESULT_KEY)
    return stored[1] if stored and stored[0] == settings else None


def check_result(network: LabNetwork, result: GradientCheck) -> None:
    """The verdict, the error against h, the table of every h and the differences per tensor."""
    best = {dtype: result.best(dtype).h for dtype in DTYPES}
    name, error = result.worst_tensor("float64")
    verdict = (f"relative error {error:.1e} in {tensor_label(name, network.model)}, the tensor that agrees least, "
               f"at h = {best['float64']:.0e} (threshold {PASS_RELATIVE_ERROR['float64']:.0e}; "
               f"{len(result.indices):,} weights checked)")
    (st.success if result.passed else st.error)(
        ("The gradient agrees with the finite differences: " if result.passed
         else "The gradient is WRONG: it disagrees with the finite differences, ") + verdict)
    export.chart(figures.error_vs_h(result.points, best), run_name=network.name, what="gradient error vs h",
                 key="gradcheck.errors")
    st.caption("Large h: truncation error (∝ h²) dominates. Small h: rounding error in C(w+h) − C(w−h) "
               "(∝ ε/h) takes over. Float32's ε ≈ 1e-7 moves the best h up and its error far above float64's.")
    table = pd.DataFrame([vars(p) for p in result.points]).rename(columns={
        "dtype": "precision", "total_abs_error": "total |error|", "max_abs_error": "max |error|",
        "max_rel_error": "max relative error", "rel_error": "relative error (norms)"})
    table["best h"] = [p.h == best[p.dtype] for p in result.points]
    st.dataframe(table, hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.2e")
                                                        for c in table.columns if c not in ("precision", "best h")})
    st.subheader("Approximate − analytic, per tensor (float64, best h)")
    differences = {tensor_label(name, network.model): values for name, values in result.differences("float64").items()}
    export.chart(figures.difference_histograms(differences), run_name=network.name,
                 what="finite differences minus analytic", key="gradcheck.hist")


def train_with_both_gradients(network: LabNetwork, arch: str, bugs: dict[str, Bug],
                              bug: str | None) -> dict[str, HandTraining] | None:
    """The "Does it train?" settings and button; the curves trained with these settings, if any."""
    st.subheader("Does it train?")
    st.caption("A few hundred steps of plain gradient descent on the training split, driven by the correct hand "
               "gradient and by the planted bug, with validation accuracy measured along the way.")
    left, middle, right = st.columns(3)
    steps = left.slider("Steps", 50, 1000, step=50, key=state.kept("gradcheck.steps", 300))
    learning_rate = middle.select_slider("Learning rate", [0.01, 0.03, 0.1, 0.3, 1.0],
                                         key=state.kept("gradcheck.lr", 0.1))
    # keyed by the planted bug, so that planting another one starts this choice afresh at it
    bug_to_train = right.selectbox("Bug to train with", list(bugs), key=state.kept(
        f"gradcheck.train_bug.{arch}.{bug}", bug or next(iter(bugs))), format_func=lambda b: bugs[b].title)
    train_settings = (network.identity, steps, learning_rate, bug_to_train)
    if st.button("Train with both gradients", key="gradcheck.train"):
        begin_action(TRAINING_KEY)
        splits = network.splits
        x_val, y_val = (splits.x_val, splits.y_val) if len(splits.y_val) else (splits.x_test, splits.y_test)
        curves = {}
        with st.status("Training...", expanded=True) as status:
            for label, planted in (("correct gradient", None), (f"bug: {bugs[bug_to_train].title}", bug_to_train)):
                st.write(f"Training with the {label}...")
                curves[label] = train_by_hand(network.params, network.model, splits.x_train, splits.y_train,
                                              x_val[:2000], y_val[:2000], bug=planted, steps=steps,
                                              learning_rate=learning_rate)
            status.update(label="Trained", state="complete", expanded=False)
        st.session_state[TRAINING_KEY] = (train_settings, curves)
        end_action(TRAINING_KEY)
    elif cut_off(TRAINING_KEY):
        st.warning(INTERRUPTED.format(what="Training with both gradients"))
    stored = st.session_state.get(TRAINING_KEY)
    return stored[1] if stored and stored[0] == train_settings else None


def training_outcome(network: LabNetwork, curves: dict[str, HandTraining]) -> None:
    """Validation accuracy along training with the correct gradient and with the bug."""
    export.chart(figures.hand_training_accuracy(curves), run_name=network.name, what="training with a planted bug",
                 key="gradcheck.training_chart")
    for label, curve in curves.items():
        if curve.diverged:
            st.warning(f"With the {label} the loss became NaN/Inf: training diverged (shown as a gap).")
    correct, buggy = curves.values()
    if buggy.about_as_good_as(correct):
        st.info("This bug hardly hurts training here: a wrong gradient that still points downhill lets gradient "
                "descent go on improving. That is why a gradient check, not the loss curve, is what catches it.")


def main() -> None:
    st.title("Gradient check")
    st.caption("Is the hand-derived gradient right? Compare it, weight by weight, with central differences of the "
               "cost, and see what a typical mistake looks like — in the check and in training.")
    network = pick_network("gradcheck")
    batch = pick_batch(network, "gradcheck")
    arch, depth = network.model.config.arch, len(network.model.config.hidden)
    bugs = {name: bug for name, bug in BUGS.items() if depth or not bug.needs_hidden}
    k, bug = check_settings(arch, depth, bugs)
    derivation(depth, bugs, bug)
    result = run_check(network, batch, k, bug)
    if result is None:
        st.info("Press the button to run the check with these settings (every weight of softmax regression takes "
                "a few seconds).")
    else:
        check_result(network, result)
    curves = train_with_both_gradients(network, arch, bugs, bug)
    if curves is not None:
        training_outcome(network, curves)


main()
