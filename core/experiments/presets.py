"""Presets: the course reports' setups, each with the accuracy its report gives, and our own best per architecture.

A preset holds one RunConfig, or several whose curves are compared (softmax-momentum). Where a report is
ambiguous, the description says which reading we chose.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig
from core.errors import ConfigError
from core.networks.base import Model, ModelConfig
from core.training.config import RunConfig, TrainConfig

REPORT_INIT = dict(init="normal", init_std=0.1)  # the reports draw weights from N(0, 0.1²)
MNIST_TRAINING_IMAGES = 60_000  # the presets are the MNIST course reports' setups
FULL_BATCH = MNIST_TRAINING_IMAGES - SplitConfig().val_size  # one batch of the whole default training set


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    configs: tuple[RunConfig, ...]  # one run, or several compared
    labels: tuple[str, ...] = ()  # one per config when there are several
    reported: float | None = None  # the report's test accuracy, when it gives one
    reported_text: str = ""  # what the report gives, in words
    ours: bool = False  # our own best preset rather than a report's

    @property
    def arch(self) -> str:
        return Model(self.configs[0].model, MNIST_SPEC).describe()


def _sigmoid_64(train_size: int | None) -> RunConfig:
    return RunConfig(ModelConfig("mlp", (64,), "sigmoid", **REPORT_INIT), SplitConfig(5000, train_size),
                     TrainConfig("sgd", 0.5, schedule="exponential", decay=0.97, batch_size=256, epochs=100))


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        "softmax-1000-per-digit",
        "Softmax regression on 1,000 training images per digit, mini-batches of 50, SGD lr 0.01. We read the "
        "rate as multiplying the sum of the batch's gradients (lr 0.5 on the mean), which trains well; 20 "
        "epochs. The reported 96.1% is above what softmax regression reaches on MNIST (about 92-93%), so we "
        "expect to fall short of it.",
        (RunConfig(ModelConfig("linear", **REPORT_INIT), SplitConfig(per_class=1000),
                   TrainConfig("sgd", 0.5, batch_size=50, epochs=20)),),
        reported=0.961, reported_text="96.1%"),
    Preset(
        "softmax-minibatch",
        "Softmax regression on the full training set, batch 50, SGD lr 0.01, init N(0, 0.1²); 5 epochs. We read "
        "the rate as multiplying the batch's summed gradient (lr 0.5 on the mean). Taken on the mean instead, "
        "lr 0.01 reaches about 89.8% after 5 epochs, close to the reported 90.07%.",
        (RunConfig(ModelConfig("linear", **REPORT_INIT), SplitConfig(),
                   TrainConfig("sgd", 0.5, batch_size=50, epochs=5)),),
        reported=0.9007, reported_text="90.07%"),
    Preset(
        "softmax-momentum",
        "Softmax regression trained by full-batch gradient descent (one step per epoch over all 55,000 "
        "images, lr 0.5 on the mean gradient), then the same with momentum 0.9; 100 steps each, curves compared.",
        tuple(RunConfig(ModelConfig("linear", **REPORT_INIT), SplitConfig(),
                        TrainConfig(optimizer, 0.5, momentum=0.9, batch_size=FULL_BATCH, epochs=100))
              for optimizer in ("sgd", "momentum")),
        labels=("gradient descent", "momentum 0.9"), reported_text="learning curves"),
    Preset(
        "mlp-300-tanh-adam",
        "784-300-10 tanh MLP (Glorot init), Adam lr 1e-3, batch 50, 6 epochs.",
        (RunConfig(ModelConfig("mlp", (300,), "tanh"), SplitConfig(),
                   TrainConfig("adam", 1e-3, batch_size=50, epochs=6)),),
        reported=0.97, reported_text="97%"),
    Preset(
        "mlp-64-sigmoid-sgd",
        "784-64-10 sigmoid MLP, init N(0, 0.1²), SGD batch 256, lr decayed ×0.97 per epoch, 100 epochs, "
        "50,000 training / 5,000 validation images / the test set. The report gives no rate: lr 0.5 on the mean "
        "gradient trains well.",
        (_sigmoid_64(50000),),
        reported=0.948, reported_text="94.8% (90-94% in a second report)"),
    Preset(
        "mlp-64-sigmoid-2000",
        "The 784-64-10 sigmoid setup above on only 2,000 training images: training accuracy reaches 100% "
        "while validation stalls far below it (overfitting).",
        (_sigmoid_64(2000),),
        reported_text="shows overfitting"),
    Preset(
        "lenet5-sgd",
        "LeNet-5 (ReLU, max-pooling, He init), SGD with momentum 0.9, lr 0.01, batch 64. The report gives no "
        "epoch count; 8 epochs.",
        (RunConfig(ModelConfig("lenet5", init="he"), SplitConfig(),
                   TrainConfig("momentum", 0.01, momentum=0.9, batch_size=64, epochs=8)),),
        reported=0.9888, reported_text="98.88%"),
    Preset(
        "best-softmax",
        "Our best softmax regression: Adam lr 1e-3 with cosine decay, batch 100, 30 epochs.",
        (RunConfig(ModelConfig("linear"), SplitConfig(),
                   TrainConfig("adam", 1e-3, schedule="cosine", batch_size=100, epochs=30)),),
        ours=True),
    Preset(
        "best-mlp",
        "Our best MLP: 784-800-10 ReLU (He init), Adam lr 1e-3 with cosine decay, batch 100, 15 epochs.",
        (RunConfig(ModelConfig("mlp", (800,), "relu", "he"), SplitConfig(),
                   TrainConfig("adam", 1e-3, schedule="cosine", batch_size=100, epochs=15)),),
        ours=True),
    Preset(
        "best-lenet5",
        "Our best LeNet-5: He init, SGD with Nesterov momentum 0.9, lr 0.05 with cosine decay, L2 weight decay "
        "5e-4, batch 64, 12 epochs.",
        (RunConfig(ModelConfig("lenet5", init="he"), SplitConfig(),
                   TrainConfig("momentum", 0.05, momentum=0.9, nesterov=True, schedule="cosine",
                               weight_decay=5e-4, batch_size=64, epochs=12)),),
        ours=True),
)}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a ConfigError listing the names."""
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}'; choose from {', '.join(PRESETS)}.")
    return PRESETS[name]
