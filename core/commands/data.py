"""`python -m core data`: where MNIST was found, how many images of each digit it holds, and the devices here."""

from core.cli import add_data_arguments, print_json, terminal_progress
from core.data.locate import load_mnist
from core.data.splits import class_counts
from core.training.programs import describe_devices

HELP = "say where MNIST was found and count the images of each digit"


def add_arguments(parser):
    add_data_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    mnist = load_mnist(args.data_dir, progress=terminal_progress)
    spec = mnist.spec
    train, test = class_counts(mnist.train_labels, spec.num_classes), class_counts(mnist.test_labels, spec.num_classes)
    if args.json:
        print_json({"source": mnist.source, "verified": mnist.verified,
                    "train_counts": train.tolist(), "test_counts": test.tolist(), "devices": describe_devices()})
        return 0
    check = "matches the published SHA-256" if mnist.verified else "parsed and validated (not the published bytes)"
    print(f"MNIST from {mnist.source}: {check}")
    print(f"{spec.class_noun:>5} {'train':>7} {'test':>6}")
    for name, a, b in zip(spec.class_names, train, test):
        print(f"{name:>5} {a:>7} {b:>6}")
    print(f"{'total':>5} {train.sum():>7} {test.sum():>6}")
    print(f"Devices: {describe_devices()} (training uses one unless --devices says more)")
    return 0
