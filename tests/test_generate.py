"""Tests of lib.generate: the GAN's players, its step in the course's loop, the course model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nbformat
import pytest
import torch

from lib import data, generate, train
from lib.__main__ import main


def _patches(n: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_generator_upsamples_to_32x32_in_tanh_range(device: torch.device) -> None:
    generator = generate.Generator().to(device)
    images = generator(torch.randn(5, generate.LATENT, device=device))
    assert images.shape == (5, 3, 32, 32) and images.abs().max() <= 1
    upsampling = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.kernel_size, m.stride) for m in upsampling[1:]] == [((4, 4), (2, 2))] * 3
    logits = generate.Discriminator().to(device)(images)
    assert logits.shape == (5,)


def test_each_update_moves_only_its_own_player() -> None:
    train.seed_everything(0)
    gan = generate.GAN()
    config = dataclasses.replace(generate.GAN_CONFIG, lr=1e-2)
    optimizer_D = train.make_optimizer(gan.discriminator.parameters(), config)
    optimizer_G = train.make_optimizer(gan.generator.parameters(), config)
    real, z = 2 * _patches(8) - 1, torch.randn(8, generate.LATENT)

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    def moved(before, module):
        return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))

    g, d = snapshot(gan.generator), snapshot(gan.discriminator)
    loss_D = generate.update_D(real, z, gan, optimizer_D)
    assert loss_D.shape == () and moved(d, gan.discriminator) and not moved(g, gan.generator)
    g, d = snapshot(gan.generator), snapshot(gan.discriminator)
    loss_G = generate.update_G(z, gan, optimizer_G)
    assert loss_G.shape == () and moved(g, gan.generator) and not moved(d, gan.discriminator)


def test_fit_trains_the_gan_with_one_loss_per_player(device: torch.device) -> None:
    gan = generate.GAN()
    loader = data.make_loader(_patches(16), torch.zeros(16), batch_size=16)
    config = dataclasses.replace(generate.GAN_CONFIG, epochs=2)
    history = train.fit(gan, loader, config, device=device, step=generate.gan_step)
    assert len(history) == 2 and all(len(losses) == 2 for losses in history)
    assert all(torch.isfinite(torch.tensor(losses)).all() for losses in history)


def test_samples_are_repeatable_images_in_unit_range() -> None:
    generator = generate.Generator()
    first = generate.sample(generator, 7, seed=3, batch_size=4)
    assert first.shape == (7, 3, 32, 32) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, generate.sample(generator, 7, seed=3, batch_size=4))
    assert torch.allclose(first, generate.sample(generator, 7, seed=3), atol=1e-5)
    assert not torch.equal(first, generate.sample(generator, 7, seed=4))


def test_the_update_functions_are_part_of_the_cache_key(monkeypatch) -> None:
    digest = train.fingerprint(_patches())
    key = train._cache_key(generate.GAN(), generate.GAN_CONFIG, generate.gan_step, digest)
    monkeypatch.setattr(generate.gan_step, "calls", (generate.update_D, train.accuracy))
    assert train._cache_key(generate.GAN(), generate.GAN_CONFIG, generate.gan_step, digest) != key


@pytest.fixture
def small_course_generator(tmp_path, monkeypatch):
    """The course's generator function on a tiny data set and one epoch, in its own course
    cache."""
    monkeypatch.setenv(train.COURSE_CACHE_DIR_ENV, str(tmp_path / "course"))
    monkeypatch.setattr(
        generate.data, "natural_patches", lambda train=True, count=None: _patches(count or 32)
    )
    monkeypatch.setattr(generate, "GAN_CONFIG", dataclasses.replace(generate.GAN_CONFIG, epochs=1))
    generate.trained_generator.cache_clear()
    yield tmp_path / "course"
    generate.trained_generator.cache_clear()


def test_the_generator_is_a_course_model_trained_once(small_course_generator, capsys) -> None:
    assert "lib.generate.trained_generator" in train.course_models()
    generator = generate.trained_generator()
    assert isinstance(generator, generate.Generator) and not generator.training
    assert len(list(small_course_generator.glob("generator-*.pt"))) == 1
    assert not list(train.cache_dir().glob("*.pt"))  # not among the students' models
    assert "trained for 1 epochs" in capsys.readouterr().out
    generate.trained_generator.cache_clear()
    again = generate.trained_generator()
    assert "loaded the trained model" in capsys.readouterr().out
    for mine, theirs in zip(
        generator.state_dict().values(), again.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, theirs)


def test_real_and_fake_pairs_patches_with_generated_images(small_course_generator) -> None:
    images, labels = generate.real_and_fake(train_split=True)
    assert images.shape == (64, 3, 32, 32) and labels.tolist() == [0] * 32 + [1] * 32
    test_images, _ = generate.real_and_fake(train_split=False)
    assert not torch.equal(images[32:], test_images[32:])  # other latent vectors
    fewer, fewer_labels = generate.real_and_fake(train_split=True, count=8)
    assert fewer.shape == (16, 3, 32, 32) and fewer_labels.sum() == 8


def test_real_and_fake_reads_the_instructors_folder(tmp_path, monkeypatch) -> None:
    from PIL import Image

    for i in range(10):
        for folder in ("A_real", "B_fake"):
            path = tmp_path / folder / f"{i}.png"
            path.parent.mkdir(exist_ok=True)
            Image.new("RGB", (4, 4), (i, 0, 0)).save(path)
    monkeypatch.setenv(data.REAL_FAKE_DIR_ENV, str(tmp_path))
    train_images, train_labels = generate.real_and_fake(train_split=True)
    test_images, test_labels = generate.real_and_fake(train_split=False)
    assert len(train_labels) == 16 and len(test_labels) == 4
    assert sorted(train_labels.tolist() + test_labels.tolist()) == [0] * 10 + [1] * 10
    pairs = {
        (img.numpy().tobytes(), int(y)) for img, y in zip(train_images, train_labels, strict=True)
    }
    assert not any(
        (img.numpy().tobytes(), int(y)) in pairs
        for img, y in zip(test_images, test_labels, strict=True)
    )


def test_a_notebook_that_samples_real_and_fake_is_given_the_generator(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The grader prepares the course models a notebook uses (``python -m lib course-models
    --for``): exercise 2 only calls ``real_and_fake``, which samples the trained generator, so
    its hand-ins get the generator instead of training it (minutes) each."""
    cells = [nbformat.v4.new_code_cell("from lib import generate\ngenerate.real_and_fake()")]
    path = tmp_path / "uses.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    assert main(["course-models", "--list", "--for", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["lib.generate.trained_generator"]
