"""The command line: training end to end on tiny data, JSON output, and one-line errors."""

import io
import json
import subprocess
import sys

import pytest

from core.cli import LOG_LINE_SECONDS, ProgressLine, build_parser
from core.commands.train import ignored_flag_notes, run_config_from_args
from core.errors import ModelFileError
from core.training.config import Optimizer, Schedule
from tests.conftest import REPO


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture
def tiny_env(tiny_data_dir, monkeypatch, tmp_path):
    import os
    return {**os.environ, "MNIST_DATA_DIR": str(tiny_data_dir), "DIGIT_LAB_CACHE_DIR": str(tmp_path / "cache")}


def test_train_json_and_save(tiny_env, tmp_path):
    result = cli("train", "--arch", "mlp", "--hidden", "16,8", "--hidden", "8", "--activation", "relu",
                 "--epochs", "2", "--val-size", "100", "--batch-size", "20", "--decay", "0.9",
                 "--save", str(tmp_path / "m.npz"), "--json", env=tiny_env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["epochs"] == 2.0
    assert summary["test_accuracy"] > 0.5 and summary["val_accuracy"] > 0.5
    assert summary["train_seconds"] > 0 and summary["compile_seconds"] > 0 and summary["samples_per_second"] > 0
    assert summary["config"]["model"]["hidden"] == [16, 8, 8]
    assert summary["config"]["train"]["schedule"] == "exponential"
    assert "test accuracy" in result.stderr and "epoch" in result.stderr  # stdout holds the JSON line alone
    assert len(result.stdout.strip().splitlines()) == 1
    assert (tmp_path / "m.npz").exists()


def test_train_saves_to_the_run_history_unless_told_not_to(tiny_env, tmp_path):
    from core.store.history import RunHistory
    from core.store.location import DATABASE_NAME
    env = {**tiny_env, "DIGIT_LAB_HOME": str(tmp_path / "home")}
    args = ("train", "--arch", "linear", "--epochs", "1", "--val-size", "100", "--batch-size", "20", "--json")
    result = cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout.strip().splitlines()[-1])["run_id"]
    history = RunHistory(tmp_path / "home" / DATABASE_NAME)
    saved = history.list()
    assert [row.run_id for row in saved] == [run_id]
    assert "saved 'Softmax regression #1' to the run history" in result.stderr
    run = history.load(run_id)
    assert run.status == "finished" and run.config.model.arch == "linear" and run.params is not None
    assert history.load(run_id).test_confusion.sum() == 300  # every test image of the tiny set, once

    assert cli(*args, "--no-history", env=env).returncode == 0
    assert len(history.list()) == 1


def test_an_unwritable_run_history_costs_a_warning_not_the_run(tiny_env, tmp_path):
    from core.store.location import DATABASE_NAME
    home = tmp_path / "home"
    home.mkdir()
    (home / DATABASE_NAME).write_bytes(b"this is not a database" * 10)
    result = cli("train", "--arch", "linear", "--epochs", "1", "--val-size", "100", "--batch-size", "20",
                 env={**tiny_env, "DIGIT_LAB_HOME": str(home)})
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "warning: not saved to the run history" in result.stderr
    assert result.stdout.startswith("validation accuracy") and "test accuracy" in result.stdout  # results on stdout
    assert (home / DATABASE_NAME).read_bytes() == b"this is not a database" * 10


def test_data_command(tiny_env, tiny_data_dir):
    result = cli("data", "--json", env=tiny_env)
    out = json.loads(result.stdout)
    assert out["train_counts"] == [120] * 10 and out["test_counts"] == [30] * 10
    assert str(tiny_data_dir) in out["source"]


@pytest.mark.parametrize("args, message", [
    (("train", "--arch", "vgg"), "invalid choice: 'vgg'"),
    (("train", "--lr", "abc"), "invalid float value"),
    (("train", "--hidden", "3,x"),
     "argument --hidden: hidden widths must be whole numbers separated by commas, not '3,x'"),
    (("train", "--val-size", "100", "--momentum", "2"), "Momentum must be in [0, 1)"),
    (("train", "--val-size", "5000"), "Validation size must be between 0 and 1199"),
    (("train", "--val-size", "100", "--batch-size", "5000"), "larger than the training set"),
    (("train", "--data-dir", "/nonexistent/mnist"), "/nonexistent/mnist does not exist"),
    (("frobnicate",), "invalid choice"),
])
def test_errors_are_one_line_without_traceback(tiny_env, args, message):
    result = cli(*args, env=tiny_env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


def test_corrupt_data_is_one_line(tiny_env, tmp_path):
    (tmp_path / "bad").mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / "bad" / name).write_bytes(b"\x00\x00\x08\x03garbage")
    result = cli("data", "--data-dir", str(tmp_path / "bad"), env=tiny_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train-images-idx3-ubyte" in result.stderr


def test_compiled_programs_are_kept_on_disk_for_the_next_run(tiny_env, tmp_path):
    """A second run of the same setup finds every program the first one compiled (it adds no cache entries)."""
    cache = tmp_path / "compiled"
    env = {**tiny_env, "DIGIT_LAB_COMPILE_CACHE": str(cache)}
    args = ("train", "--arch", "mlp", "--hidden", "8", "--epochs", "1", "--val-size", "100", "--no-history")

    def entries():
        return sorted(path.name for path in cache.glob("*-cache"))

    assert cli(*args, env=env).returncode == 0
    first = entries()
    assert any(name.startswith("jit_chunk") for name in first)
    assert cli(*args, env=env).returncode == 0
    assert entries() == first


def test_compile_cache_setting(monkeypatch, tmp_path):
    """"off" turns the cache off; a folder that cannot be created leaves it off rather than failing."""
    from core.training import compile_cache
    monkeypatch.setenv(compile_cache.CACHE_ENV, "off")
    assert compile_cache.default_dir() is None and compile_cache.enable() is None
    monkeypatch.setenv(compile_cache.CACHE_ENV, str(tmp_path / "programs"))
    assert compile_cache.default_dir() == tmp_path / "programs"
    (tmp_path / "a-file").write_text("")
    assert compile_cache.enable(tmp_path / "a-file" / "programs") is None


@pytest.mark.parametrize("args, message", [
    (("train", "--seed", "-1"), "a seed must be between 0 and 4294967295, got -1"),
    (("train", "--seed", "4294967296"), "a seed must be between 0 and 4294967295"),  # would alias seed 0's weights
    (("gradcheck", "--seed", "-3"), "a seed must be between 0 and 4294967295, got -3"),
    (("sweep", "--seeds", "0,-1"), "Seeds must be whole numbers from 0 to 4294967295"),
    (("sweep", "--seeds", "0,1.5"), "seeds must be whole numbers separated by commas, not '0,1.5'"),
    (("sweep", "--seeds", ","), "argument --seeds: seeds: give at least one"),
    (("sweep", "--lr", ","), "learning rates: give at least one"),
    (("sweep", "--lr", "0.1;x"), "learning rates must be numbers separated by commas"),
    (("sweep", "--momentum", ""), "momenta: give at least one"),
    (("backprop-timing", "--batch-sizes", "10,a"), "batch sizes must be whole numbers separated by commas"),
    (("sweep", "--optimizer", "adam", "--momentum", "0.5,0.9"), "Only SGD with momentum uses a momentum"),
    (("sweep", "--lr", "0.1,0.1"), "Each learning rate once"),
    (("reproduce", "--train-size", "0"), "must be 1 or more, got 0"),
    (("reproduce", "--presets", ","), "Name at least one preset after --presets"),
    (("gradcheck", "--batch-size", "100000"),
     "The batch size (100,000) is larger than the training set (1,200 images)"),
    (("train", "--save", ""), "--save needs a file name, such as model.npz."),
    (("backprop-timing", "--hidden-widths", "8,100000"),
     "A hidden layer can have at most 16384 units"),  # before timing
    (("train", "--lr", "1e-50"), "a positive number a float32 can hold (1.2e-38 to 3.4e+38)"),  # 0 inside the program
])
def test_cli_bad_seeds_and_lists_are_one_line_errors(tiny_env, args, message):
    result = cli(*args, env=tiny_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


def test_cli_unwritable_save_path_fails_before_training(tiny_env, tmp_path):
    (tmp_path / "a-file").write_text("")
    for save, message in ((tmp_path / "a-file" / "m.npz", "is a file, not a folder"), (tmp_path, "is a directory")):
        result = cli("train", "--arch", "linear", "--val-size", "100", "--batch-size", "20", "--no-history",
                     "--save", str(save), env=tiny_env)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert message in result.stderr and "compiling" not in result.stderr  # said before any training
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]  # no stray .part file left
    result = cli("train", "--data-dir", str(tmp_path / "no-data"), "--save", str(tmp_path / "new" / "sub" / "m.npz"),
                 env=tiny_env)
    assert result.returncode == 2 and not (tmp_path / "new").exists()  # a run that never started makes no folders


def test_cli_save_failing_after_training_keeps_the_results(tiny_data_dir, tmp_path, monkeypatch, capsys):
    from core.cli import main
    from core.commands import train as train_command

    def full_disk(path, *args, **kwargs):
        raise ModelFileError(f"Cannot save the model to {path} (No space left on device).")

    monkeypatch.setattr(train_command, "save_model", full_disk)
    code = main(["train", "--data-dir", str(tiny_data_dir), "--arch", "linear", "--epochs", "1", "--val-size", "0",
                 "--batch-size", "20", "--no-history", "--save", str(tmp_path / "m.npz"), "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert f"error: Cannot save the model to {tmp_path / 'm.npz'} (No space left on device)." in err
    assert "validation accuracy — (no validation images)" in err and "nan" not in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["val_accuracy"] is None and summary["test_accuracy"] > 0.5


def test_ctrl_c_while_compiling_stops_after_the_first_chunk_and_keeps_it(tiny_data_dir, tmp_path, monkeypatch,
                                                                          capsys):
    """Ctrl-C is a request the loop reads between chunks: never an interrupt inside XLA's compiler (which can crash
    the process); the run is evaluated, saved and reported as stopped, and a second Ctrl-C cannot lose it."""
    import signal

    from core.cli import main
    from core.commands import train as train_command

    real_train = train_command.train

    def ctrl_c_while_compiling(config, splits, **options):
        signal.raise_signal(signal.SIGINT)
        yield from real_train(config, splits, **options)

    def ctrl_c_again_while_saving(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return real_save(*args, **kwargs)

    real_save = train_command.save_model
    monkeypatch.setattr(train_command, "train", ctrl_c_while_compiling)
    monkeypatch.setattr(train_command, "save_model", ctrl_c_again_while_saving)
    handler = signal.getsignal(signal.SIGINT)  # (ignored where the tests run as a shell's background job)
    code = main(["train", "--data-dir", str(tiny_data_dir), "--arch", "linear", "--val-size", "100", "--epochs", "3",
                 "--no-history", "--save", str(tmp_path / "m.npz"), "--json"])
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 130 and summary["status"] == "stopped" and 0 < summary["epochs"] < 3
    assert summary["test_accuracy"] is not None and (tmp_path / "m.npz").exists()
    assert err.count("stopping after this chunk") == 1 and "Traceback" not in err
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C works as it did before again


@pytest.mark.parametrize("flags, notes", [
    (["--nesterov"], ["note: --nesterov has no effect with --optimizer adam; only --optimizer momentum uses it."]),
    (["--momentum", "0.1", "--optimizer", "sgd"],
     ["note: --momentum has no effect with --optimizer sgd; only --optimizer momentum uses it."]),
    (["--schedule", "constant", "--decay", "0.9"],
     ["note: --decay has no effect with --schedule constant; only --schedule exponential uses it."]),
    (["--arch", "lenet5", "--hidden", "5", "--activation", "relu"],
     ["note: --hidden has no effect with --arch lenet5; only --arch mlp uses it.",
      "note: --activation has no effect with --arch lenet5; only --arch mlp uses it."]),
    (["--init-std", "0.2"], ["note: --init-std has no effect with the default init; only --init normal uses it."]),
    (["--init", "he", "--init-std", "0.2"],
     ["note: --init-std has no effect with --init he; only --init normal uses it."]),
    (["--optimizer", "momentum", "--momentum", "0.5", "--nesterov", "--schedule", "exponential", "--decay", "0.9"], []),
    (["--arch", "mlp", "--hidden", "5", "--activation", "relu", "--init", "normal", "--init-std", "0.2"], []),
    ([], []),
])
def test_flags_the_chosen_network_optimiser_or_schedule_ignores_get_a_note(flags, notes):
    assert ignored_flag_notes(build_parser().parse_args(["train", *flags])) == notes


def test_optimiser_and_schedule_flags_take_and_show_their_plain_names(capsys):
    parser = build_parser()
    config = run_config_from_args(parser.parse_args(["train", "--optimizer", "momentum", "--decay", "0.9"]))
    assert (config.train.optimizer, config.train.schedule) == (Optimizer.MOMENTUM, Schedule.EXPONENTIAL)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    shown = capsys.readouterr().out
    assert "--optimizer {sgd,momentum,adam}" in shown and "--schedule {constant,exponential,cosine}" in shown
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--optimizer", "gd"])
    refused = capsys.readouterr().err
    assert "invalid choice: 'gd'" in refused and "sgd" in refused and "Optimizer" not in refused


@pytest.mark.parametrize("flags, init", [
    (["--arch", "lenet5"], "he"), (["--activation", "relu"], "he"), (["--activation", "sigmoid"], "glorot"),
    (["--arch", "linear"], "glorot"), (["--activation", "relu", "--init", "normal"], "normal"),
])
def test_the_cli_initialises_as_the_app_does_unless_told(flags, init):
    config = run_config_from_args(build_parser().parse_args(["train", *flags]))
    assert config.model.init == init


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_rewrites_one_line_on_a_terminal():
    out = Terminal()
    with ProgressLine(out) as line:
        line.show("epoch 1 of 2, longer")
        line.show("epoch 2 of 2")
    assert out.getvalue() == "\repoch 1 of 2, longer\r" + "epoch 2 of 2".ljust(20) + "\n"


def test_progress_in_a_log_is_a_plain_line_every_few_seconds_and_the_last(monkeypatch):
    from core.training import drive
    clock = iter([0.0, 1.0, LOG_LINE_SECONDS + 0.5, LOG_LINE_SECONDS + 1.0])
    monkeypatch.setattr(drive.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    with ProgressLine(out) as line:
        for step in range(4):
            line.show(f"step {step}")
    assert out.getvalue() == "step 0\nstep 2\nstep 3\n"


def test_train_progress_in_a_log_is_newline_terminated_lines(tiny_env):
    result = cli("train", "--arch", "linear", "--epochs", "2", "--val-size", "100", "--batch-size", "20",
                 "--no-history", env=tiny_env)  # stderr is a pipe, not a terminal
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and result.stderr.endswith("\n")
    progress = [line for line in result.stderr.splitlines() if line.startswith("epoch")]
    assert progress and progress[-1].startswith("epoch   2.00/2  step 110  loss")  # 1,100 images: 55 steps an epoch
