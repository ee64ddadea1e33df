"""The datasets Digit Lab can download and read by name: their files, mirrors, published checksums, classes,
description and citation, stated once. MNIST is the default."""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass

from core.data import download
from core.data.spec import MNIST_SPEC, DataSpec


class DatasetName(enum.StrEnum):
    """A registered dataset: the CLI's `--dataset` value and the Data page's choice."""

    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"
    KMNIST = "kmnist"
    QMNIST = "qmnist"
    QMNIST_TEST10K = "qmnist-test10k"
    EMNIST_DIGITS = "emnist-digits"
    EMNIST_LETTERS = "emnist-letters"
    EMNIST_BALANCED = "emnist-balanced"
    EMNIST_BYCLASS = "emnist-byclass"


class Layout(enum.StrEnum):
    """How a dataset's files hold its images and labels."""

    IDX = "idx"  # four IDX files (gzipped or raw), uint8 labels
    QMNIST = "qmnist"  # labels are IDX type 0x0C: int32 rows of 8 columns, the first the class
    EMNIST = "emnist"  # one zip of every split's gzipped IDX files; images stored transposed


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset. `files` are its four IDX files (train images, train labels, test images, test labels)
    without `.gz`; `downloads` what is fetched (file name → "md5:hex") from each of `mirrors` in turn (base URLs
    ending in "/"); `raw_sha256` the published SHA-256 of decompressed files, where there is one."""

    name: DatasetName
    spec: DataSpec
    layout: Layout
    files: tuple[str, str, str, str]
    downloads: dict[str, str]
    mirrors: tuple[str, ...]
    env: str  # the environment variable naming a folder that holds it
    folder: str  # its folder in the download cache
    description: str
    citation: str
    raw_sha256: dict[str, str] | None = None
    test_limit: int | None = None  # only the first N test images (QMNIST's MNIST-compatible test set)
    label_offset: int = 0  # subtracted from the stored labels (EMNIST letters: 1..26)

    @property
    def title(self) -> str:
        return self.spec.name


def _gz_md5(files: tuple[str, ...], digests: tuple[str, ...]) -> dict[str, str]:
    return {f"{name}.gz": f"md5:{digest}" for name, digest in zip(files, digests)}


_DIGITS = tuple(string.digits)
_EMNIST_ZIP = "gzip.zip"
_EMNIST_MIRRORS = ("https://biometrics.nist.gov/cs_links/EMNIST/", "http://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/")
_EMNIST_CITATION = ("Cohen, G., Afshar, S., Tapson, J., & van Schaik, A. (2017). EMNIST: an extension of MNIST to "
                    "handwritten letters. arXiv:1702.05373.")
_EMNIST_CLASSES = {  # (classes, noun, description)
    "digits": (_DIGITS, "digit", "280,000 handwritten digits from NIST Special Database 19, in MNIST's format "
               "(240,000 training, 40,000 test images), balanced across the ten digits."),
    "letters": (tuple(string.ascii_uppercase), "letter", "145,600 handwritten letters, upper and lower case merged "
                "into 26 classes (124,800 training, 20,800 test images); stored labels 1–26 become 0–25."),
    "balanced": (_DIGITS + tuple(string.ascii_uppercase) + tuple("abdefghnqrt"), "class",
                 "131,600 characters in 47 balanced classes: the digits, the capitals, and the eleven lower-case "
                 "letters that do not look like their capitals (112,800 training, 18,800 test images)."),
    "byclass": (_DIGITS + tuple(string.ascii_uppercase) + tuple(string.ascii_lowercase), "class",
                "814,255 characters in 62 unbalanced classes: digits, capitals and lower case (697,932 training, "
                "116,323 test images). The largest: training on it takes about 3 GB of memory."),
}


def _emnist(split: str) -> DatasetInfo:
    classes, noun, description = _EMNIST_CLASSES[split]
    files = tuple(f"gzip/emnist-{split}-{part}" for part in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "test-images-idx3-ubyte", "test-labels-idx1-ubyte"))
    return DatasetInfo(
        DatasetName(f"emnist-{split}"), DataSpec(f"EMNIST {split}", 28, 28, 1, classes, noun), Layout.EMNIST,
        files, {_EMNIST_ZIP: "md5:58c8d27c78d21e728a6bc7b3cc06412e"}, _EMNIST_MIRRORS, "EMNIST_DATA_DIR", "emnist",
        f"EMNIST {split}: {description} One 536 MB zip from NIST holds every EMNIST split.", _EMNIST_CITATION,
        label_offset=1 if split == "letters" else 0)


_STANDARD_FILES = download.MNIST_FILES
_QMNIST_FILES = ("qmnist-train-images-idx3-ubyte", "qmnist-train-labels-idx2-int",
                 "qmnist-test-images-idx3-ubyte", "qmnist-test-labels-idx2-int")
_QMNIST_MD5 = ("ed72d4157d28c017586c42bc6afe6370", "0058f8dd561b90ffdd0f734c6a30e5e4",
               "1394631089c404de565df7b7aeaf9412", "5b5b05890a5e13444e108efe57b788aa")
_QMNIST_MIRRORS = ("https://raw.githubusercontent.com/facebookresearch/qmnist/master/",
                   "https://github.com/facebookresearch/qmnist/raw/master/")
_QMNIST_CITATION = "Yadav, C., & Bottou, L. (2019). Cold Case: The Lost MNIST Digits. NeurIPS 2019, arXiv:1905.10498."


def _qmnist(name: DatasetName, test_limit: int | None) -> DatasetInfo:
    which = ("its 10,000 first test images, which are MNIST's test set (so results compare with MNIST's)"
             if test_limit else "all 60,000 of its test images (MNIST's 10,000 and the 50,000 MNIST lost)")
    return DatasetInfo(
        name, DataSpec("QMNIST" + (" (test10k)" if test_limit else ""), 28, 28, 1, _DIGITS, "digit"), Layout.QMNIST,
        _QMNIST_FILES, _gz_md5(_QMNIST_FILES, _QMNIST_MD5), _QMNIST_MIRRORS, "QMNIST_DATA_DIR", "qmnist",
        "QMNIST reconstructs MNIST's preprocessing from the original NIST scans and recovers the 50,000 test digits "
        f"MNIST dropped: 60,000 training images (matching MNIST's) and 60,000 test images. This choice tests on "
        f"{which}.",
        _QMNIST_CITATION, test_limit=test_limit)


REGISTRY: dict[DatasetName, DatasetInfo] = {info.name: info for info in (
    DatasetInfo(
        DatasetName.MNIST, MNIST_SPEC, Layout.IDX, _STANDARD_FILES, _gz_md5(_STANDARD_FILES, tuple(
            download.GZ_MD5[name] for name in _STANDARD_FILES)), download.MIRRORS, "MNIST_DATA_DIR", "mnist",
        "70,000 handwritten digits, 28×28 grey (60,000 training, 10,000 test images), written by American census "
        "employees and high-school students; each digit size-normalised into 20×20 and centred by its centre of mass.",
        "LeCun, Y., Bottou, L., Bengio, Y., & Haffner, P. (1998). Gradient-based learning applied to document "
        "recognition. Proceedings of the IEEE, 86(11), 2278–2324.", raw_sha256=download.RAW_SHA256),
    DatasetInfo(
        DatasetName.FASHION_MNIST, DataSpec("Fashion-MNIST", 28, 28, 1, (
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            "class"), Layout.IDX, _STANDARD_FILES, _gz_md5(_STANDARD_FILES, (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        "FASHION_MNIST_DATA_DIR", "fashion-mnist",
        "70,000 28×28 grey photographs of Zalando's clothing in ten classes (60,000 training, 10,000 test images), "
        "a drop-in replacement for MNIST that is harder: shirts, T-shirts, pullovers and coats are easily confused.",
        "Xiao, H., Rasul, K., & Vollgraf, R. (2017). Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine "
        "Learning Algorithms. arXiv:1708.07747."),
    DatasetInfo(
        DatasetName.KMNIST, DataSpec("KMNIST", 28, 28, 1, (
            "o (お)", "ki (き)", "su (す)", "tsu (つ)", "na (な)", "ha (は)", "ma (ま)", "ya (や)", "re (れ)",
            "wo (を)"),
            "character"), Layout.IDX, _STANDARD_FILES, _gz_md5(_STANDARD_FILES, (
                "bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
                "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134")),
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",), "KMNIST_DATA_DIR", "kmnist",
        "Kuzushiji-MNIST: 70,000 28×28 grey images of ten hiragana in cursive Kuzushiji script from classical "
        "Japanese books (60,000 training, 10,000 test images); one character per class, each in many old styles. "
        "Only its publisher, CODH, hosts it.",
        "Clanuwat, T., Bober-Irizar, M., Kitamoto, A., Lamb, A., Yamamoto, K., & Ha, D. (2018). Deep Learning for "
        "Classical Japanese Literature. arXiv:1812.01718."),
    _qmnist(DatasetName.QMNIST, None),
    _qmnist(DatasetName.QMNIST_TEST10K, 10_000),
    *(_emnist(split) for split in _EMNIST_CLASSES),
)}
