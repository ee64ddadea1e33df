"""What data to train on, as one value the CLI and the app both build: a registered dataset and where to look for
it, or the user's own folder, zip or CSV and how to convert its images.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from core.data.download import ProgressCallback
from core.data.formats import Dataset, load_path
from core.data.locate import locate
from core.data.registry import REGISTRY, DatasetName
from core.data.user_data import ImageOptions, ReadProgress, load_user_data
from core.errors import ConfigError


@dataclass(frozen=True)
class DataSource:
    """A registered `dataset` (looked for in `path`, else its variable, its cache, a download), or, with `dataset`
    None, the user's own data at `path` converted as `images` says."""

    dataset: DatasetName | None = DatasetName.MNIST
    path: str | None = None
    images: ImageOptions = field(default_factory=ImageOptions)

    def __post_init__(self):
        path = str(self.path).strip() if self.path is not None else ""  # (a pasted path often brings a space along)
        object.__setattr__(self, "path", path or None)
        if self.dataset is not None:
            object.__setattr__(self, "dataset", DatasetName(self.dataset))
        elif self.path is None:
            raise ConfigError("Your own data needs a folder of class subfolders, a zip of one, or a CSV file.")

    @property
    def title(self) -> str:
        """e.g. 'Fashion-MNIST', 'your data in digits.zip'."""
        return REGISTRY[self.dataset].title if self.dataset else f"your data in {Path(self.path).name}"


def located(source: DataSource, *, allow_download: bool = True, progress: ProgressCallback | None = None) -> DataSource:
    """The source with the path its registered dataset was found at (downloaded there first if need be); the user's
    own data is where it is said to be."""
    if source.dataset is None:
        return source
    return replace(source, path=str(locate(source.dataset, source.path, allow_download=allow_download,
                                           progress=progress)))


def load_source(source: DataSource, *, allow_download: bool = True, progress: ProgressCallback | None = None,
                reading: ReadProgress | None = None) -> Dataset:
    """The data the source names, found (`located`: `progress` hears of a download) and loaded (`reading` of the
    user's image files read)."""
    source = located(source, allow_download=allow_download, progress=progress)
    if source.dataset is None:
        return load_user_data(source.path, source.images, reading)
    return load_path(source.path, REGISTRY[source.dataset])
