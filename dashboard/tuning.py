"""Sliders for the hyperparameters a student tweaks, each beside a box holding its exact value, and the Train page's
settings in the page's address, so that copying the address shares the setup."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import streamlit as st

from core.errors import ConfigError
from core.parsing import number_list
from dashboard import state

S = state.SETTINGS_PREFIX
SLIDER = ".slider"  # a slider's key: its setting's key and this


def _decades(low: int, high: int, steps: Sequence[float] = (1, 2, 5)) -> list[float]:
    """1-2-5 steps per decade from 10**low to 10**high: 1e-5, 2e-5, 5e-5, 1e-4, …, 10**high."""
    values = [float(f"{step}e{power}") for power in range(low, high) for step in steps]
    return [*values, float(f"1e{high}")]


LEARNING_RATES = _decades(-5, 1)
WEIGHT_DECAYS = [0.0, *_decades(-6, -1)]
BATCH_SIZES = [1, 2, 4, 8, 16, 32, 50, 64, 128, 256, 512, 1024, 2048, 4096]  # powers of two and the reports' 50
EPOCHS = [*range(1, 31), 40, 50, 60, 80, 100, 150, 200]
MOMENTA = [round(m / 100, 2) for m in range(100)]
DECAYS = [round(d / 100, 2) for d in range(50, 101)]
DROPOUTS = [round(r / 20, 2) for r in range(19)]
TRAIN_SIZES = [int(v) for v in _decades(2, 5)]  # 100 … 100,000 (the split keeps what there is)
PER_CLASS = [int(v) for v in _decades(1, 4)]
WIDTHS = [8, 16, 32, 64, 100, 128, 150, 256, 300, 500, 512, 800, 1000, 1024, 2048, 4096]
MAX_DEPTH = 6


def nearest(options: Sequence[float], value: float) -> float:
    """The option closest to `value`: on a log scale when the options span decades (zero counting as the lowest)."""
    positive = [o for o in options if o > 0]
    logarithmic = len(positive) > 1 and max(positive) / min(positive) >= 100
    if logarithmic:
        if value <= 0:
            return options[0]
        return min(positive, key=lambda o: abs(math.log(o) - math.log(value)))
    return min(options, key=lambda o: abs(o - value))


def format_value(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def slider(label: str, name: str, options: Sequence[float], *, text: bool = False,
           read: Callable[[Any], float] = float, write: Callable[[float], Any] = lambda value: value,
           help: str | None = None, **box_options) -> None:
    """A slider over `options` for setting `name`, with a box beside it (a number box, or a text box with `text`)
    that holds the exact value and can be typed into. The box is the setting; the slider shows the option nearest
    to it, and moving the slider sets the box (`write` turns an option into the box's value, `read` the box's value
    into a number)."""
    key = S + name

    def slid() -> None:
        st.session_state[key] = write(st.session_state[key + SLIDER])

    try:
        shown = nearest(options, read(st.session_state[key]))
    except (ValueError, ConfigError):  # a box holding what is not a number: the slider stays where it was
        shown = st.session_state.get(key + SLIDER, options[0])
    st.session_state[key + SLIDER] = shown
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.select_slider(label, options, key=key + SLIDER, on_change=slid, format_func=format_value, help=help)
    box = right.text_input if text else right.number_input
    box(f"{label} (exact value)", key=key, label_visibility="collapsed", **box_options)


def hidden_layers(label: str, name: str, help: str) -> None:
    """A depth slider and one width slider per hidden layer, kept in step with the widths' text box."""
    key = S + name
    try:
        widths = list(number_list(st.session_state[key], int, label))
    except ConfigError:
        widths = None

    def set_depth() -> None:
        depth = st.session_state[key + ".depth"]
        old = list(number_list(st.session_state[key], int, label)) if widths else [300]
        st.session_state[key] = ",".join(map(str, (old + [old[-1]] * depth)[:depth]))

    def set_width(layer: int) -> None:
        new = list(widths)
        new[layer] = st.session_state[f"{key}.width{layer}"]
        st.session_state[key] = ",".join(map(str, new))

    st.text_input(label, key=key, help=help)
    if widths is None or len(widths) > MAX_DEPTH:
        return
    st.session_state[key + ".depth"] = len(widths)
    columns = st.columns(len(widths) + 1)
    columns[0].select_slider("Hidden layers", list(range(1, MAX_DEPTH + 1)), key=key + ".depth", on_change=set_depth)
    for layer, (column, width) in enumerate(zip(columns[1:], widths)):
        st.session_state[f"{key}.width{layer}"] = nearest(WIDTHS, width)
        column.select_slider(f"Width {layer + 1}", WIDTHS, key=f"{key}.width{layer}", on_change=set_width,
                             args=(layer,))


# --------------------------------------------------------------------------------------- settings in the address


def parse_setting(text: str, default: Any, choices: Sequence | None = None, list_of: type | None = None) -> Any:
    """A setting's value from its text in an address, of its default's type (one of `choices`; a comma-separated
    list of `list_of` numbers); ValueError when it is not one."""
    if list_of is not None:
        try:
            number_list(text, list_of, "")
        except ConfigError:
            raise ValueError("a list of whole numbers" if list_of is int else "a list of numbers") from None
        return text
    if choices is not None:
        match = next((choice for choice in choices if str(choice) == text), None)
        if match is None:
            raise ValueError(f"one of {', '.join(map(str, choices))}")
        return match
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError("true or false")
        return text.lower() == "true"
    if isinstance(default, int):
        value = int(text)
        if value < 0:
            raise ValueError("a whole number, 0 or more")
        return value
    if isinstance(default, float):
        value = float(text)
        if not math.isfinite(value) or value < 0:
            raise ValueError("a number, 0 or more")
        return value
    return text


def settings_from_address(params: Mapping[str, str], defaults: Mapping[str, Any], choices: Mapping[str, Sequence],
                          lists: Mapping[str, type]) -> tuple[dict[str, Any], list[str]]:
    """The settings an address gives, and a note for each part of it that is not a setting or not a valid value
    (that setting keeps its default)."""
    values, notes = {}, []
    for name, text in params.items():
        if name not in defaults:
            notes.append(f"'{name}' is not a setting")
            continue
        try:
            values[name] = parse_setting(text, defaults[name], choices.get(name), lists.get(name))
        except ValueError as exc:
            expected = str(exc) if " " in str(exc) else f"a {type(defaults[name]).__name__}"
            notes.append(f"{name}={text!r} is not {expected}")
    return values, notes


def address_of(settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, str]:
    """The address parts for the settings that differ from their defaults."""
    return {name: str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in settings.items() if value != defaults[name]}
