"""The Train page's sliders (each kept in step with its exact box) and its settings in the page's address."""

from __future__ import annotations

import pytest
from test_pages import app

from core.networks.base import Activation
from dashboard import tuning

S = "setting."


def test_nearest_is_on_a_log_scale_when_the_options_span_decades():
    assert tuning.nearest(tuning.LEARNING_RATES, 3e-3) == 2e-3  # log(3/2) < log(5/3)
    assert tuning.nearest(tuning.LEARNING_RATES, 4e-3) == 5e-3
    assert tuning.nearest(tuning.WEIGHT_DECAYS, 0.0) == 0.0 and tuning.nearest(tuning.WEIGHT_DECAYS, 1e-9) == 1e-6
    assert tuning.nearest(tuning.MOMENTA, 0.914) == 0.91
    assert tuning.LEARNING_RATES[0] == 1e-5 and tuning.LEARNING_RATES[-1] == 10
    assert {50, 64, 256} <= set(tuning.BATCH_SIZES)


def test_an_address_gives_valid_settings_and_notes_the_rest():
    defaults = {"learning_rate": 1e-3, "epochs": 3, "activation": Activation.RELU, "nesterov": False, "hidden": "300"}
    values, notes = tuning.settings_from_address(
        {"learning_rate": "0.05", "epochs": "-2", "activation": "swish", "nesterov": "true", "hidden": "500,,x",
         "colour": "red"}, defaults, {"activation": list(Activation)}, {"hidden": int})
    assert values == {"learning_rate": 0.05, "nesterov": True}
    assert notes == ["epochs='-2' is not a whole number, 0 or more", "activation='swish' is not one of tanh, sigmoid, "
                     "relu", "hidden='500,,x' is not a list of whole numbers", "'colour' is not a setting"]
    assert tuning.address_of({**defaults, "epochs": 5, "nesterov": True}, defaults) == {"epochs": "5",
                                                                                          "nesterov": "true"}


def test_moving_a_slider_sets_the_exact_box_and_the_address(data_env):
    at = app("train").run()
    assert not at.exception
    at.select_slider(key=S + "learning_rate.slider").set_value(0.05).run()
    assert at.number_input(key=S + "learning_rate").value == 0.05
    assert at.query_params["learning_rate"] == "0.05"
    at.number_input(key=S + "learning_rate").set_value(0.0031).run()  # typed: the slider shows the nearest
    assert at.select_slider(key=S + "learning_rate.slider").value == 2e-3
    assert at.query_params["learning_rate"] == "0.0031"
    at.select_slider(key=S + "epochs.slider").set_value(7).run()
    assert at.number_input(key=S + "epochs").value == 7 and at.query_params["epochs"] == "7"


def test_depth_and_width_sliders_write_the_hidden_widths(data_env):
    at = app("train").run()
    at.select_slider(key=S + "hidden.depth").set_value(3).run()
    assert at.text_input(key=S + "hidden").value == "300,300,300"
    at.select_slider(key=S + "hidden.width1").set_value(64).run()
    assert at.text_input(key=S + "hidden").value == "300,64,300"
    assert at.query_params["hidden"] == "300,64,300"
    at.select_slider(key=S + "hidden.depth").set_value(1).run()
    assert at.text_input(key=S + "hidden").value == "300"


def test_a_shared_address_restores_the_settings(data_env):
    at = app("train")
    for name, value in {"arch": "mlp", "hidden": "128,64", "activation": "tanh", "optimizer": "momentum",
                        "learning_rate": "0.02", "momentum": "0.8", "batch_size": "64", "epochs": "2"}.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception
    assert at.text_input(key=S + "hidden").value == "128,64"
    assert at.selectbox(key=S + "activation").value == Activation.TANH
    assert at.number_input(key=S + "learning_rate").value == 0.02
    assert at.select_slider(key=S + "momentum.slider").value == 0.8
    assert at.number_input(key=S + "batch_size").value == 64 and at.number_input(key=S + "epochs").value == 2
    assert not at.warning


@pytest.mark.parametrize("bad", [{"learning_rate": "fast"}, {"optimizer": "lion"}, {"depth": "3"}])
def test_a_bad_address_is_a_note_and_the_default(data_env, bad):
    at = app("train")
    for name, value in bad.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception
    assert any("keep their defaults" in warning.value for warning in at.warning)
    assert at.number_input(key=S + "learning_rate").value == 1e-3
