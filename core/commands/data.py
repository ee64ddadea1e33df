"""`python -m core data`: which dataset was found where, how many images of each class it holds, and the devices
here."""

from core.cli import add_data_arguments, load_data, print_json
from core.data.splits import class_counts
from core.training.programs import describe_devices

HELP = "say where the dataset was found and count the images of each class"


def add_arguments(parser):
    add_data_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    data = load_data(args)
    spec = data.spec
    train, test = class_counts(data.train_labels, spec.num_classes), class_counts(data.test_labels, spec.num_classes)
    if args.json:
        print_json({"dataset": spec.name, "source": data.source, "verified": data.verified,
                    "class_names": list(spec.class_names), "train_counts": train.tolist(), "test_counts": test.tolist(),
                    "skipped": list(data.skipped), "devices": describe_devices()})
        return 0
    check = "matches the published checksums" if data.verified else "parsed and validated (not the published bytes)"
    print(f"{spec.name} from {data.source}: {check}")
    width = max(5, len(spec.class_noun), *(len(name) for name in spec.class_names))
    print(f"{spec.class_noun:>{width}} {'train':>7} {'test':>6}")
    for name, a, b in zip(spec.class_names, train, test):
        print(f"{name:>{width}} {a:>7} {b:>6}")
    print(f"{'total':>{width}} {train.sum():>7} {test.sum():>6}")
    print(f"Devices: {describe_devices()} (training uses one unless --devices says more)")
    return 0
