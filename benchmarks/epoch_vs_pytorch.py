"""One epoch of the full MNIST training set per architecture: Digit Lab's engine against a PyTorch reference.

Both sides start from the same initial parameters (Digit Lab's `init`, copied into PyTorch), use the same
optimiser and batch size and see the same shuffled batches (`core.train.epoch_order`). Digit Lab's time is
`Progress.elapsed` (compilation excluded, reported apart); PyTorch's is the epoch loop after a short warm-up.
With --repeats N the sides alternate N times and the best epoch of each is kept.

    MNIST_DATA_DIR=/path/to/mnist python benchmarks/epoch_vs_pytorch.py [--arch lenet5] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import torch
from torch import nn

from core.data.locate import load_mnist
from core.data.splits import SplitConfig, Splits, make_splits
from core.errors import DigitLabError
from core.networks.base import Model, ModelConfig, Params, seed_key
from core.training.config import Optimizer, RunConfig, TrainConfig
from core.training.loop import StartPoint, epoch_order, train
from core.training.status import RunStatus

SPLIT = SplitConfig(val_size=0)  # all 60,000 training images
SETTINGS = {
    "linear": RunConfig(ModelConfig("linear"), SPLIT, TrainConfig("sgd", 0.01, batch_size=50, epochs=1)),
    "mlp": RunConfig(ModelConfig("mlp", (300,), "tanh"), SPLIT, TrainConfig("adam", 1e-3, batch_size=50, epochs=1)),
    "lenet5": RunConfig(ModelConfig("lenet5"), SPLIT, TrainConfig("adam", 1e-3, batch_size=64, epochs=1)),
}
WARMUP_STEPS = 20
CORES = len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class EpochResult:
    seconds: float  # training time of the epoch, compilation excluded
    final_loss: float  # mean train loss over the epoch's last `tail_steps` steps
    compile_seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- Digit Lab


def digit_lab_epoch(config: RunConfig, splits: Splits, params: Params) -> tuple[EpochResult, int]:
    """One epoch with core.train.train; also returns how many steps its last chunk (the loss tail) holds."""
    records = list(train(config, splits, start=StartPoint(params)))
    last = records[-1]
    if last.status is not RunStatus.FINISHED:
        raise SystemExit(f"{config.model.arch}: Digit Lab's run ended with status '{last.status}'.")
    tail_steps = last.step - (records[-2].step if len(records) > 1 else 0)
    return EpochResult(last.elapsed, last.train_loss, last.compile_seconds), tail_steps


# ---------------------------------------------------------------------------------------------- PyTorch

TORCH_ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}


def torch_lenet5(model: Model) -> nn.Sequential:
    shapes = model.weight_shapes()
    return nn.Sequential(
        nn.Unflatten(1, (1, model.spec.height, model.spec.width)),
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(*shapes["fc1"]), nn.ReLU(), nn.Linear(*shapes["fc2"]), nn.ReLU(), nn.Linear(*shapes["output"]),
    )


def torch_dense_stack(model: Model) -> nn.Sequential:
    """Softmax regression or an MLP: an activation before each layer after the first."""
    layers = []
    for n_in, n_out in model.weight_shapes().values():
        if layers:
            layers.append(TORCH_ACTIVATIONS[model.config.activation]())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


TORCH_NETWORKS = {"linear": torch_dense_stack, "mlp": torch_dense_stack, "lenet5": torch_lenet5}  # by registry name


def torch_model(model: Model, params: Params) -> nn.Sequential:
    """The same network in PyTorch holding a copy of Digit Lab's parameters (HWIO → OIHW, (in, out) → (out, in))."""
    net = TORCH_NETWORKS[model.config.arch](model)
    names = list(model.weight_shapes())
    weighted = [m for m in net if isinstance(m, (nn.Linear, nn.Conv2d))]
    for module, name in zip(weighted, names, strict=True):
        w = np.asarray(params[name]["w"])
        if w.ndim == 4:
            w = w.transpose(3, 2, 0, 1)
        elif name == "fc1":  # Digit Lab flattens pooled maps as (h, w, c); PyTorch as (c, h, w)
            side = int(np.sqrt(w.shape[0] // 16))
            w = w.reshape(side, side, 16, -1).transpose(2, 0, 1, 3).reshape(w.shape[0], -1).T
        else:
            w = w.T
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            module.bias.copy_(torch.from_numpy(np.array(params[name]["b"])))
    return net


def torch_optimizer(config: TrainConfig, net: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer is Optimizer.SGD:
        return torch.optim.SGD(net.parameters(), lr=config.learning_rate)
    if config.optimizer is Optimizer.ADAM:
        return torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    raise ValueError(f"No PyTorch reference for optimiser '{config.optimizer}'.")


def torch_epoch(config: RunConfig, splits: Splits, params: Params, tail_steps: int,
                device: torch.device) -> EpochResult:
    """One epoch in PyTorch on `device` over the batches Digit Lab uses, after WARMUP_STEPS on a throwaway copy."""
    batches = shuffled_batches(config, splits).to(device)
    x = torch.from_numpy(splits.x_train).to(device)
    y = torch.from_numpy(splits.y_train.astype(np.int64)).to(device)
    loss_fn = nn.CrossEntropyLoss()

    def run(steps):
        net = torch_model(Model(config.model, splits.spec), params).to(device)
        optimizer = torch_optimizer(config.train, net)
        losses = torch.empty(len(steps), device=device)
        started = time.perf_counter()
        for i, index in enumerate(steps):
            loss = loss_fn(net(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses[i] = loss.detach()
        losses = losses.cpu()  # (waits for the device's queued work)
        return time.perf_counter() - started, losses

    run(batches[:WARMUP_STEPS])
    seconds, losses = run(batches)
    return EpochResult(seconds, float(losses[-tail_steps:].mean()))


def shuffled_batches(config: RunConfig, splits: Splits) -> torch.Tensor:
    """Epoch 0's batches exactly as core.train.train draws them (last partial batch dropped)."""
    batch = config.train.batch_size
    steps = len(splits.y_train) // batch
    order = epoch_order(config.train.seed, 0, len(splits.y_train))[: steps * batch]
    return torch.from_numpy(order.reshape(steps, batch))


def check_same_network(config: RunConfig, splits: Splits, params: Params) -> None:
    """Both implementations give the same logits for the same parameters, or the comparison means nothing."""
    x = splits.x_train[:64]
    model = Model(config.model, splits.spec)
    ours = np.asarray(model.apply(params, x))
    with torch.no_grad():
        theirs = torch_model(model, params)(torch.from_numpy(x)).numpy()
    if not np.allclose(ours, theirs, atol=1e-4, rtol=1e-4):
        raise SystemExit(f"{config.model.arch}: the PyTorch reference disagrees (max |Δlogit| "
                         f"{np.abs(ours - theirs).max():.2e}); fix torch_model before timing.")


# ---------------------------------------------------------------------------------------------- report


def benchmark(arch: str, splits: Splits, repeats: int, device: torch.device) -> dict:
    """Alternate Digit Lab and PyTorch epochs `repeats` times; keep the best time of each side."""
    config = SETTINGS[arch]
    model = Model(config.model, splits.spec)
    params = model.init(seed_key(config.train.seed))
    check_same_network(config, splits, params)
    ours, theirs = [], []
    for r in range(repeats):
        print(f"{arch}: epoch {r + 1}/{repeats} …", file=sys.stderr, flush=True)
        result, tail_steps = digit_lab_epoch(config, splits, params)
        ours.append(result)
        theirs.append(torch_epoch(config, splits, params, tail_steps, device))
    samples = len(splits.y_train) // config.train.batch_size * config.train.batch_size
    best_ours, best_theirs = min(r.seconds for r in ours), min(r.seconds for r in theirs)
    return {
        "arch": arch,
        "network": model.describe(),
        "optimizer": f"{config.train.optimizer} {config.train.learning_rate:g}, batch {config.train.batch_size}",
        "digit_lab_seconds": round(best_ours, 3),
        "digit_lab_samples_per_second": round(samples / best_ours),
        "compile_seconds": round(ours[0].compile_seconds, 3),
        "pytorch_seconds": round(best_theirs, 3),
        "pytorch_samples_per_second": round(samples / best_theirs),
        "ratio": round(best_theirs / best_ours, 2),
        "digit_lab_final_loss": round(ours[-1].final_loss, 4),
        "pytorch_final_loss": round(theirs[-1].final_loss, 4),
        "repeats": repeats,
    }


def machine(device: torch.device) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    return {"date": datetime.date.today().isoformat(), "cpu": cpu, "cores": CORES,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "jax": jax.__version__, "torch": torch.__version__,
            "jax_device": str(jax.devices()[0]), "torch_device": str(device)}


def print_table(rows: list[dict], info: dict) -> None:
    print(f"One epoch of MNIST (60,000 images), {info['date']}, {info['cpu']}, {info['cores']} cores, "
          f"PyTorch threads: {info['torch_threads']}, "
          f"Python {info['python']}, jax {info['jax']} on {info['jax_device']}, torch {info['torch']} on "
          f"{info['torch_device']}; best of {rows[0]['repeats']}.\n")
    print("| network | optimiser | Digit Lab s/epoch | samples/s | compile s | PyTorch s/epoch | samples/s "
          "| PyTorch ÷ Digit Lab | final train loss (DL / PT) |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['network']} | {r['optimizer']} | {r['digit_lab_seconds']:.2f} "
              f"| {r['digit_lab_samples_per_second']:,} | {r['compile_seconds']:.2f} "
              f"| {r['pytorch_seconds']:.2f} | {r['pytorch_samples_per_second']:,} "
              f"| {r['ratio']:.2f}× | {r['digit_lab_final_loss']:.3f} / {r['pytorch_final_loss']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", action="append", choices=list(SETTINGS),
                        help="architecture to run (repeatable; default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="epochs per side, alternating; the best is kept")
    parser.add_argument("--json", action="store_true", help="print one JSON line per architecture instead of a table")
    parser.add_argument("--torch-threads", type=int, default=CORES, help=f"PyTorch intra-op threads (default: {CORES})")
    parser.add_argument("--data-dir", help="MNIST directory (default: $MNIST_DATA_DIR, then the cache)")
    parser.add_argument("--torch-device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where PyTorch trains (default: its GPU when it sees one, as JAX trains on its own)")
    args = parser.parse_args()
    device = torch.device(args.torch_device)
    if args.repeats < 1 or args.torch_threads < 1:
        parser.error("--repeats and --torch-threads must be at least 1")
    torch.set_num_threads(args.torch_threads)
    try:
        splits = make_splits(load_mnist(args.data_dir), SPLIT)
    except DigitLabError as exc:
        parser.exit(1, f"error: {exc}\n")
    info = machine(device)
    rows = []
    for arch in args.arch or list(SETTINGS):
        rows.append(benchmark(arch, splits, args.repeats, device))
        if args.json:
            print(json.dumps({**rows[-1], **info}), flush=True)
    if not args.json:
        print_table(rows, info)


if __name__ == "__main__":
    main()
