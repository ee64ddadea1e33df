"""Issue #20: no run lost to a killed process, no input or setting that exhausts the server, a server that listens
on this machine alone, and checked server paths."""

from __future__ import annotations

import functools
import gzip
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, as_if_its_writer_died, idx_bytes
from streamlit.testing.v1 import AppTest

from core.data.formats import MAX_FILE_BYTES, read_npz
from core.data.locate import load_mnist
from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError, DataError, HistoryError
from core.networks.base import ModelConfig
from core.store.history import Checkpoints, RunHistory
from core.store.location import HOME_ENV, default_path
from core.training import budget
from core.training.budget import check_budget
from core.training.config import RunConfig, TrainConfig
from core.training.loop import check_run, train
from core.training.runs import CURVE_FIELDS, Run, numbered_name
from core.training.status import RunStatus, parse_status

TINY = ["--arch", "mlp", "--hidden", "64", "--val-size", "100", "--batch-size", "10"]


@pytest.fixture
def env(tiny_data_dir, tmp_path) -> dict:
    """A subprocess's environment: the tiny MNIST, a run history of its own, no compile cache."""
    return {**os.environ, "MNIST_DATA_DIR": str(tiny_data_dir), HOME_ENV: str(tmp_path / "home"),
            "DIGIT_LAB_COMPILE_CACHE": "off", "PYTHONPATH": str(REPO)}


def history_of(env: dict) -> RunHistory:
    return RunHistory(Path(env[HOME_ENV]) / "runs.sqlite3")


def wait_for_running_run(env: dict, process: subprocess.Popen, seconds: float = 240, *, runs: int = 1,
                         epochs: float = 0.0) -> None:
    """Until the process's `runs` runs are in the history, marked running, each with more than `epochs` trained (a
    run is written as it starts, then after its first chunk and at each epoch's end)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if (Path(env[HOME_ENV]) / "runs.sqlite3").exists() and sum(
                r.status == "running" and r.epochs > epochs for r in history_of(env).list()) == runs:
            return
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"the {runs} runs never appeared in the history")


def long_cli_run(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", "train", *TINY, "--epochs", "100000"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_interrupted_with_usable_parameters(env: dict, data_dir, runs: int = 1) -> list[Run]:
    """The history's `runs` runs, each interrupted at its last checkpoint's step, with trained parameters."""
    listed = history_of(env).list()
    assert len(listed) == runs, listed
    assert history_of(env).list(status=RunStatus.INTERRUPTED) == listed  # the Runs page's filter finds them
    loaded = []
    for saved in listed:
        status, step = parse_status(saved.status)
        assert status is RunStatus.INTERRUPTED and step > 0 and saved.test_accuracy is None
        assert saved.status == f"interrupted at step {step}"
        run = history_of(env).load(saved.run_id)
        assert run.status is RunStatus.INTERRUPTED and run.steps_done == step and run.params is not None
        splits = make_splits(load_mnist(data_dir), run.config.data)
        assert run.evaluate(splits.x_test, splits.y_test).accuracy > 0.5  # trained parameters, not the initial ones
        loaded.append(run)
    return loaded


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_cli_as_ctrl_c_does(env, signum):
    process = long_cli_run(env)
    wait_for_running_run(env, process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 128 + signum, err
    assert f"{signal.Signals(signum).name}: stopping after this chunk" in err and "Traceback" not in err
    (saved,) = history_of(env).list()
    assert saved.status == "stopped" and saved.test_accuracy > 0.5 and "test accuracy" in out


def test_a_killed_cli_run_is_in_the_history_interrupted_with_its_parameters(env, tiny_data_dir):
    process = long_cli_run(env)
    wait_for_running_run(env, process)
    time.sleep(1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    [run] = assert_interrupted_with_usable_parameters(env, tiny_data_dir)
    listing = subprocess.run([sys.executable, "-m", "core", "runs"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
    assert listing.returncode == 0 and f"{run.name:<32} {run.status_text:<28} test       —" in listing.stdout


APP_TRAINING = textwrap.dedent("""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("Home.py", default_timeout=3600)
    at.session_state["setting.val_size"] = 100
    at.switch_page("dashboard/pages/train.py")
    at.run()
    at.number_input(key="setting.epochs").set_value(100000)
    at.text_input(key="setting.hidden").set_value("64")
    at.run()
    next(b for b in at.button if b.label == "Train").click().run()
""")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_an_app_process_that_dies_while_training_leaves_its_run_interrupted(env, tiny_data_dir, signum):
    """The Train page's run is in the history as it trains, so an app process killed mid-run loses at most the
    last checkpoint's worth of training, whatever the signal."""
    process = subprocess.Popen([sys.executable, "-c", APP_TRAINING], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for_running_run(env, process)
    time.sleep(1)
    process.send_signal(signum)
    process.communicate(timeout=60)
    [run] = assert_interrupted_with_usable_parameters(env, tiny_data_dir)
    assert run.name == "784-64-10 relu #1"


def test_a_killed_cli_sweep_leaves_every_variant_interrupted_with_its_parameters(env, tiny_data_dir):
    process = subprocess.Popen([sys.executable, "-m", "core", "sweep", *TINY, "--epochs", "100000", "--lr",
                                "0.001,0.002", "--seeds", "0,1"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for_running_run(env, process, runs=4, epochs=1)  # each variant written at its epoch ends
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    runs = assert_interrupted_with_usable_parameters(env, tiny_data_dir, runs=4)
    assert {(run.config.train.learning_rate, run.config.train.seed) for run in runs} == {
        (0.001, 0), (0.001, 1), (0.002, 0), (0.002, 1)}
    assert all(run.name.startswith("sweep 784-64-10 tanh: lr 0.00") for run in runs)


def test_a_killed_cli_reproduction_leaves_its_run_interrupted_with_its_parameters(env, real_mnist_dir):
    env = {**env, "MNIST_DATA_DIR": str(real_mnist_dir)}
    process = subprocess.Popen([sys.executable, "-m", "core", "reproduce", "--presets", "best-softmax"], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_running_run(env, process, epochs=1)  # 30 epochs on 55,000 images: far from its end
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    [run] = assert_interrupted_with_usable_parameters(env, real_mnist_dir)
    assert run.name == "best-softmax" and run.epochs_completed < 30


APP_EXPERIMENTS = {  # a page of the app training for ever in an AppTest: (page, its settings, the runs it trains)
    "sweep": ({"setting.sweep.optimizer": "adam", "setting.sweep.epochs": 100000,
               "setting.sweep.train_size": 0, "setting.sweep.val_size": 100, "setting.sweep.lrs": "0.001, 0.002",
               "setting.sweep.seeds": "0"}, 2),
    "overfitting": ({"setting.overfitting.sizes": "1000, 1100", "setting.overfitting.epochs": 100000,
                     "setting.overfitting.val_size": 100}, 1),
}


APP_EXPERIMENT = textwrap.dedent("""
    import json
    import sys
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("Home.py", default_timeout=3600)
    at.switch_page(f"dashboard/pages/{sys.argv[1]}.py")
    for key, value in json.loads(sys.argv[2]).items():
        at.session_state[key] = value
    at.run()
    at.button[0].click().run()
""")


@pytest.mark.parametrize("page", list(APP_EXPERIMENTS))
def test_an_app_killed_while_a_sweep_or_study_trains_leaves_its_runs_interrupted(env, tiny_data_dir, page):
    """The Sweep and Overfitting pages write their runs to the history as they train, as the Train page does."""
    settings, runs = APP_EXPERIMENTS[page]
    process = subprocess.Popen([sys.executable, "-c", APP_EXPERIMENT, page, json.dumps(settings)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_running_run(env, process, runs=runs, epochs=1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    trained = assert_interrupted_with_usable_parameters(env, tiny_data_dir, runs=runs)
    if page == "overfitting":  # the first size, in training; the second not begun
        assert trained[0].name == "mlp-300-tanh-adam on 1,000 images"


def test_checkpoints_come_at_epoch_ends_and_every_few_seconds_and_settle_as_interrupted(tiny_mnist, tmp_path):
    splits = make_splits(tiny_mnist, SplitConfig(val_size=100))
    config = RunConfig(ModelConfig("linear"), SplitConfig(val_size=100), TrainConfig(epochs=3, batch_size=10))
    history = RunHistory(tmp_path / "runs.sqlite3")
    run = Run("r", config, splits.spec)
    checkpoints = Checkpoints(history, run, every=3600)
    checkpoints.start()
    assert [(row.name, row.status, row.epochs) for row in history.list()] == [("r", "running", 0)]
    written = []
    for progress in train(config, splits):
        run.record(progress)
        checkpoints()
        checkpoints.wait()
        (saved,) = history.list()
        written.append((run.steps_done, saved.status))
    steps = [step for step, _ in written]
    # the first chunk, then each epoch's end (3 snapshots), nothing in between with a long interval
    loaded = history.load(run.run_id)
    assert [epoch for epoch, _ in loaded.snapshots] == [1, 2, 3] and checkpoints.error is None
    assert all(status == "running" for _, status in written)  # this process is alive: it is training
    assert history.load(run.run_id).steps_done in steps
    # the same rows, as written by a process that has died
    as_if_its_writer_died(history)
    (saved,) = history.list()
    assert saved.status == f"interrupted at step {run.steps_done}"
    run.finish(splits)
    history.save(run)  # the ended run replaces its checkpoint
    assert history.list()[0].status == "finished" and len(history.load(run.run_id).snapshots) == 3


def test_a_history_that_cannot_be_written_costs_the_checkpoints_not_the_training(tiny_mnist, tmp_path):
    splits = make_splits(tiny_mnist, SplitConfig(val_size=100))
    config = RunConfig(ModelConfig("linear"), SplitConfig(val_size=100), TrainConfig(epochs=1, batch_size=10))
    history = RunHistory(tmp_path / "runs.sqlite3")
    run = Run("r", config, splits.spec)
    checkpoints = Checkpoints(history, run)
    history.path.unlink()
    history.path.mkdir()  # a folder where the database was: every write fails
    for progress in train(config, splits):
        run.record(progress)
        checkpoints()
    checkpoints.wait()
    assert run.status is RunStatus.FINISHED and "cannot be used" in str(checkpoints.error)


def test_settings_that_would_exhaust_the_machine_are_refused_before_compiling(env, monkeypatch, tiny_mnist):
    monkeypatch.setenv(budget.SHARE_ENV, "0.01")
    huge = RunConfig(ModelConfig("mlp", (16384,) * 3))
    assert budget.training_bytes(huge, MNIST_SPEC) > 16e9  # 550M parameters, Adam's two moments, two copies
    assert budget.training_bytes(RunConfig(), MNIST_SPEC) < 50e6
    labels = np.arange(60_000) % 10
    with pytest.raises(ConfigError, match=r"needs about 1\d\.\d GB of memory to train; this run may use"):
        check_run(huge, labels, MNIST_SPEC)
    check_run(RunConfig(), labels, MNIST_SPEC)
    with pytest.raises(ConfigError, match="would not finish"):
        check_run(RunConfig(train=TrainConfig(epochs=1_000_000_000)), labels, MNIST_SPEC)
    # a sweep holds all its variants at once: 16 of a network that fits alone may not
    from core.experiments.sweep import train_sweep

    one = RunConfig(ModelConfig("mlp", (2048,)), SplitConfig(val_size=100), TrainConfig(batch_size=10))
    share = 2 * budget.training_bytes(one, MNIST_SPEC) / budget.available_bytes()
    monkeypatch.setenv(budget.SHARE_ENV, f"{share:.6f}")
    splits = make_splits(tiny_mnist, one.data)
    check_budget(one, MNIST_SPEC, 100)
    with pytest.raises(ConfigError, match=r"784-2048-10 tanh \(16 variants\) with batch 10 needs about"):
        next(train_sweep([one] * 16, splits))
    monkeypatch.setenv(budget.SHARE_ENV, "2")
    with pytest.raises(ConfigError, match="DIGIT_LAB_MEMORY_SHARE must be a fraction"):
        check_run(RunConfig(), labels, MNIST_SPEC)
    cli_env = {**env, budget.SHARE_ENV: "0.01"}
    for flags, message in [
        (["--hidden", "16384,16384,16384"], "needs about"),
        (["--epochs", "1000000000"], "1,000,000,000 epochs would not finish"),
        (["--batch-size", "5000"], "The batch size (5000) is larger than the training set"),
        (["--hidden", "1,,2"], "hidden widths must be whole numbers separated by commas, not '1,,2'"),
        (["--lr", "-inf"], "The learning rate must be a positive number"),
        (["--lr", "-1e-3"], "The learning rate must be a positive number"),
    ]:
        result = subprocess.run([sys.executable, "-m", "core", "train", "--no-history", "--val-size", "100", *flags],
                                cwd=REPO,
                                env=cli_env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and message in result.stderr, (flags, result.stderr)
        assert "compiling" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def cgroup_files(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (path under `root` -> content) as the kernel lays them out; returns `root`."""
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


GIB = 2**30
MEMINFO_16_GIB = f"MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   {16 * GIB // 1024} kB\n"


def test_the_memory_available_is_the_cgroup_limit_when_it_is_less_than_the_machines(tmp_path):
    meminfo = cgroup_files(tmp_path, {"meminfo": MEMINFO_16_GIB}) / "meminfo"
    v2 = cgroup_files(tmp_path / "v2", {  # a container (its own cgroup at the root) inside a limited slice
        "memory.max": f"{4 * GIB}\n", "memory.current": f"{3 * GIB}\n",
        "memory.stat": f"anon {2 * GIB}\nfile {GIB}\nactive_file {GIB // 2}\ninactive_file {GIB // 2}\n",
        "app.slice/memory.max": "max\n", "app.slice/memory.current": f"{GIB}\n",
        "app.slice/lab/memory.max": f"{3 * GIB}\n", "app.slice/lab/memory.current": f"{GIB}\n"})
    own = cgroup_files(tmp_path, {"v2-own": "0::/\n", "v2-nested": "0::/app.slice/lab\n"})
    # 4 GiB less 3 GiB used, of which 0.5 GiB is inactive page cache
    assert budget.cgroup_available_bytes(v2, own / "v2-own") == int(1.5 * GIB)
    assert budget.available_bytes(meminfo, v2, own / "v2-own") == int(1.5 * GIB)
    # nested: its own limit (3 GiB, 1 used) and the root's; a parent without a limit ("max") does not count
    assert budget.cgroup_available_bytes(v2, own / "v2-nested") == int(1.5 * GIB)
    (v2 / "memory.max").write_text("max\n")
    assert budget.cgroup_available_bytes(v2, own / "v2-nested") == 2 * GIB
    (v2 / "app.slice/lab/memory.max").write_text("max\n")
    assert budget.cgroup_available_bytes(v2, own / "v2-nested") is None
    assert budget.available_bytes(meminfo, v2, own / "v2-nested") == 16 * GIB

    v1 = cgroup_files(tmp_path / "v1", {  # docker on cgroup v1: its cgroup at the mount, its path elsewhere
        "memory/memory.limit_in_bytes": f"{2 * GIB}\n", "memory/memory.usage_in_bytes": f"{GIB}\n",
        "memory/memory.stat": f"cache {GIB // 2}\ntotal_inactive_file {GIB // 4}\n",
        "cpu/cpu.shares": "1024\n"})
    own = cgroup_files(tmp_path, {"v1-own": "5:cpu,cpuacct:/docker/1f2e\n4:memory:/docker/1f2e\n0::/\n"}) / "v1-own"
    assert budget.available_bytes(meminfo, v1, own) == int(1.25 * GIB)
    (v1 / "memory/memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert budget.available_bytes(meminfo, v1, own) == 16 * GIB
    # no cgroup files (another OS, or /sys not mounted), or none readable: the machine's MemAvailable
    assert budget.cgroup_available_bytes(tmp_path / "none", tmp_path / "none" / "cgroup") is None
    assert budget.available_bytes(meminfo, tmp_path / "none", tmp_path / "none" / "cgroup") == 16 * GIB


def test_a_network_that_fits_the_machine_but_not_its_container_is_refused(tmp_path, monkeypatch):
    meminfo = cgroup_files(tmp_path, {"meminfo": MEMINFO_16_GIB}) / "meminfo"
    container = cgroup_files(tmp_path / "cgroup", {"memory.max": f"{GIB}\n", "memory.current": f"{GIB // 2}\n"})
    own = cgroup_files(tmp_path, {"own": "0::/\n"}) / "own"
    wide = RunConfig(ModelConfig("mlp", (4096, 4096)))
    assert 0.3e9 < budget.training_bytes(wide, MNIST_SPEC) < 2e9  # within half of 16 GiB, not of the 0.5 GiB left
    available = budget.available_bytes
    monkeypatch.setattr(budget, "available_bytes", functools.partial(available, meminfo, tmp_path / "none", own))
    check_budget(wide, MNIST_SPEC, 1100)
    monkeypatch.setattr(budget, "available_bytes", functools.partial(available, meminfo, container, own))
    with pytest.raises(ConfigError, match=r"needs about .* this run may use 0.3 GB \(50% of the 0.5 GB available;"):
        check_budget(wide, MNIST_SPEC, 1100)


HOSTILE = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from core.data import formats
    from core.errors import DataError

    def vm_size():
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize"))

    limit = vm_size() + 300 * 2**20  # nothing near the sizes these files declare can be allocated
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for path in sys.argv[1:]:
        try:
            formats.load_path(Path(path))
        except DataError as exc:
            print("refused:", str(exc).splitlines()[0][-120:], flush=True)
        else:
            print("loaded", flush=True)
""")


def npy_header(shape: tuple, dtype: str = "<u1") -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def test_hostile_files_are_refused_without_allocating_what_they_declare(tmp_path):
    lying = tmp_path / "lying.npz"  # a header claiming 100 GB over 1 KB of data
    with zipfile.ZipFile(lying, "w") as archive:
        archive.writestr("x_train.npy", npy_header((100_000, 1000, 1000)) + bytes(1000))
    bomb = tmp_path / "bomb.npz"  # a small archive whose entry inflates past the limit
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("x_train.npy", "w",
                                                                                    force_zip64=True) as entry:
        entry.write(npy_header((MAX_FILE_BYTES + 2**20,)))
        for _ in range(MAX_FILE_BYTES // 2**24 + 1):
            entry.write(bytes(2**24))
    gz_bomb = tmp_path / "idx"  # IDX images whose gzip inflates to far more than its header declares
    gz_bomb.mkdir()
    header = idx_bytes(np.zeros((100, 28, 28), np.uint8))[:16]
    with gzip.open(gz_bomb / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as file:
        file.write(header)
        for _ in range(MAX_FILE_BYTES // 2**24 + 1):
            file.write(bytes(2**24))
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (gz_bomb / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((100,) + (28, 28) * ("images" in name),
                                                                            np.uint8))))
    assert max(p.stat().st_size for p in (lying, bomb, *gz_bomb.iterdir())) < 20e6
    result = subprocess.run([sys.executable, "-c", HOSTILE, str(lying), str(bomb), str(gz_bomb)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("refused:") for line in lines), lines
    assert "declares 100,000,000,000 bytes but holds 1,000" in lines[0]
    assert "more than the 1,024.0 MB Digit Lab reads" in lines[1]
    assert "more than its header declares" in lines[2]


def test_a_model_file_with_a_lying_header_is_one_clear_error(tmp_path):
    from core.errors import ModelFileError
    from core.store.checkpoint import load_model

    with zipfile.ZipFile(tmp_path / "m.npz", "w") as archive:
        archive.writestr("output/w.npy", npy_header((10**6, 10**5), "<f4") + bytes(64))
    with pytest.raises(ModelFileError, match="declares 400,000,000,000 bytes but holds 64"):
        load_model(tmp_path / "m.npz")
    with pytest.raises(DataError, match="holds Python objects"):
        read_npz(_object_array_npz(tmp_path), "objects.npz")


def _object_array_npz(tmp_path: Path) -> Path:
    path = tmp_path / "objects.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.npy", npy_header((1,), "|O") + b"\x80")
    return path


def test_an_image_of_too_many_pixels_is_refused_before_decoding(tmp_path):
    from PIL import Image

    from core.data.images import MAX_IMAGE_PIXELS, read_grey

    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    Image.new("1", (side, side)).save(tmp_path / "huge.png")
    with pytest.raises(DataError, match=f"{side}×{side} pixels is more than the {MAX_IMAGE_PIXELS:,} Digit Lab"):
        read_grey(tmp_path / "huge.png")


def test_the_app_listens_on_this_machine_alone_by_default():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "Home.py", "--server.headless", "true",
                               "--server.port", str(port)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline, listening = time.monotonic() + 120, []
        while not listening and time.monotonic() < deadline:
            time.sleep(0.5)
            listening = listening_addresses(port)
        assert listening, "the app never listened"
        assert all(address in ("127.0.0.1", "::1") for address in listening), listening
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=60)
    assert "Network URL" not in out


def listening_addresses(port: int) -> list[str]:
    """The local addresses of the TCP sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is host order
                found.append(socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, words))
    return found


def test_a_new_history_file_only_in_the_histories_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    at = AppTest.from_file(str(REPO / "dashboard" / "pages" / "runs.py"), default_timeout=60).run()
    outside = tmp_path / "elsewhere" / "new-folder" / "runs.sqlite3"
    at.text_input(key="runs_page.path_input").set_value(str(outside))
    next(b for b in at.button if b.label == "Use this file").click().run()
    assert not at.exception and "must be in the history's folder" in at.error[0].value
    assert not (tmp_path / "elsewhere").exists() and "history_path" not in at.session_state
    at.text_input(key="runs_page.path_input").set_value("class-2.sqlite3")
    next(b for b in at.button if b.label == "Use this file").click().run()
    assert not at.exception and at.session_state["history_path"] == str(default_path().parent / "class-2.sqlite3")


def test_a_data_directory_must_exist_and_hold_data(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=60)
    at.session_state["setting.data_dir"] = str(tmp_path / "no" / "such" / "folder")
    at.run()
    assert not at.exception and "does not exist" in at.error[0].value
    assert not (tmp_path / "no").exists()


def test_default_run_names_are_numbered_across_the_history(env):
    assert numbered_name("784-300-10 relu", []) == "784-300-10 relu #1"
    assert numbered_name("a", ["a #1", "a #7", "a #x", "ab #9", "b #3"]) == "a #8"
    for expected in ("784-64-10 tanh #1", "784-64-10 tanh #2"):
        result = subprocess.run([sys.executable, "-m", "core", "train", *TINY, "--epochs", "1", "--json"], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert history_of(env).load(json.loads(result.stdout)["run_id"]).name == expected


def test_uploads_of_ended_app_processes_are_removed(monkeypatch, tmp_path):
    from dashboard import state

    monkeypatch.setattr(state, "UPLOADS_ROOT", tmp_path)
    for name in ("999999999", "0123abcd", str(os.getpid())):  # a process that has ended, an older layout, this one
        (tmp_path / name).mkdir()
        (tmp_path / name / "mnist.npz").write_bytes(b"x")
    state.clean_uploads.clear()
    state.clean_uploads()
    assert [p.name for p in tmp_path.iterdir()] == [str(os.getpid())] and state.uploads_dir() == tmp_path / str(
        os.getpid())


def test_a_database_corrupt_in_its_interior_is_reported_in_a_few_short_lines(tmp_path, tiny_mnist, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # where the list of problems is written
    path = tmp_path / "runs.sqlite3"
    history = RunHistory(path)
    params = {"output": {"w": np.zeros((784, 10), np.float32), "b": np.zeros(10, np.float32)}}
    for i in range(30):
        curves = [dict.fromkeys(CURVE_FIELDS, 0.0) | {"step": step} for step in range(1, 21)]
        history.save(Run(f"run {i}", RunConfig(ModelConfig("linear")), MNIST_SPEC, params=params, status="finished",
                         history=curves, snapshots=[(1, params), (2, params)], test_accuracy=0.5))
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for start in range(2 * page, len(data) - page, page):  # scribble inside every page, headers kept
        data[start + 100:start + 400] = np.random.default_rng(start).bytes(300)
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryError, match="is corrupt") as caught:
        RunHistory(path).list()
    message = str(caught.value)
    paths = len(str(tmp_path)) * 2  # the message names the database and the log file, both in tmp_path
    assert "\n" not in message and len(message) - paths < 400, message
    log_file = Path(message.split("listed in ")[1].split(")")[0])
    assert log_file.is_relative_to(tmp_path / "state") and len(log_file.read_text().splitlines()) > 3


def test_one_setting_moves_every_cache(monkeypatch, tmp_path):
    from core.data.download import default_cache_dir
    from core.training import compile_cache

    monkeypatch.delenv(compile_cache.CACHE_ENV)
    monkeypatch.setenv("DIGIT_LAB_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path and compile_cache.default_dir() == tmp_path / "xla"
    monkeypatch.setenv(compile_cache.CACHE_ENV, str(tmp_path / "programs"))  # the compile cache's own setting wins
    assert compile_cache.default_dir() == tmp_path / "programs"


def test_an_interrupted_run_reloads_into_results_and_weights(monkeypatch, tmp_path, tiny_data_dir, tiny_mnist):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))
    config = RunConfig(ModelConfig("linear"), SplitConfig(val_size=200), TrainConfig(epochs=2, batch_size=10))
    run = Run("cut short", config, MNIST_SPEC)
    checkpoints = Checkpoints(RunHistory(default_path()), run)
    checkpoints.start()
    for progress in train(config, make_splits(tiny_mnist, config.data)):
        run.record(progress)
        checkpoints()
        if run.snapshots:
            break  # the process "dies" after its first epoch
    checkpoints.wait()
    as_if_its_writer_died(RunHistory(default_path()))
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=120)
    at.switch_page("dashboard/pages/runs.py").run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["status"].tolist() == [f"interrupted at step {run.steps_done}"]
    at.multiselect(key="runs_page.selection").set_value([run.run_id]).run()
    next(b for b in at.button if b.label.startswith("Reload")).click().run()
    for page in ("results", "weights"):
        at.switch_page(f"dashboard/pages/{page}.py").run()
        assert not at.exception and not at.error, (page, at.exception)
    at.switch_page("dashboard/pages/results.py").run()
    assert at.selectbox(key="run_picker").value == "cut short"


COMPILE_ONE_PROGRAM = textwrap.dedent("""
    import sys
    from pathlib import Path
    from core.training import compile_cache
    compile_cache.enable(Path(sys.argv[1]))
    import jax, jax.numpy as jnp
    print(float(jax.jit(lambda x: jnp.sin(x) * 2 + 1)(jnp.float32(1.0))))
""")


def test_a_damaged_compile_cache_entry_is_replaced_after_one_warning(tmp_path):
    def compile_once() -> str:
        result = subprocess.run([sys.executable, "-c", COMPILE_ONE_PROGRAM, str(tmp_path)], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0 and result.stdout.strip() == "2.6829419136047363", result.stderr
        return result.stderr

    assert "Error reading" not in compile_once()
    entries = {entry: entry.read_bytes() for entry in tmp_path.glob("*-cache")}
    for entry, whole in entries.items():
        entry.write_bytes(whole[:100])  # as a process killed while writing it leaves it
    assert "Error reading persistent compilation cache entry" in compile_once()
    assert {entry: entry.read_bytes() for entry in entries} == entries  # compiled again and written in its place
    assert "Error reading" not in compile_once()
