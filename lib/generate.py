"""The deepfakes of chapter 2: a small GAN that generates 32x32 photo patches.

The generator follows DCGAN (Radford et al., 2016, "Unsupervised representation learning
with deep convolutional generative adversarial networks"): a latent vector is upsampled by
transposed convolutions with kernel 4 and stride 2 to a 32x32 colour image with ``tanh``
outputs. Every such upsampling step spreads each input pixel over a 4x4 footprint every 2
pixels, so the generated images carry a periodic pattern, the artefact that Frank et al.
(2020) find as a grid of peaks in the spectrum. The GAN is trained with the course's loop,
:func:`lib.train.fit`, one step per batch that updates the discriminator, then the generator
(d2l's ``update_D``/``update_G``); the trained generator is a course model.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import nn

from lib import data, train

#: Length of the latent vector ``z`` the generator starts from.
LATENT = 64
#: Training of the course's generator: DCGAN's Adam (lr 2e-4, beta_1 0.5) for a few epochs
#: over the 8,000 training patches, about 1-2 minutes on two CPU cores.
GAN_CONFIG = train.TrainConfig(epochs=6, batch_size=64, lr=2e-4, momentum=0.5, optimizer="adam")


def _up(inputs: int, outputs: int) -> list[nn.Module]:
    # Kernel 4, stride 2: each step doubles height and width (DCGAN's upsampling).
    return [
        nn.ConvTranspose2d(inputs, outputs, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
    ]


class Generator(nn.Module):
    """DCGAN-style generator: ``z`` ``[N, latent]`` to images ``[N, 3, 32, 32]`` in ``[-1, 1]``.

    ``z`` becomes a 4x4 map, then three transposed convolutions (kernel 4, stride 2) double it
    to 8x8, 16x16 and 32x32; ``tanh`` bounds the output.
    """

    def __init__(self, latent: int = LATENT, width: int = 32) -> None:
        super().__init__()
        self.latent = latent
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent, 4 * width, 4, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(4 * width),
            nn.ReLU(),
            *_up(4 * width, 2 * width),
            *_up(2 * width, width),
            nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """DCGAN-style discriminator: images ``[N, 3, 32, 32]`` in ``[-1, 1]`` to one logit each
    (positive: "real"). Strided convolutions halve the size three times."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(4 * width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * width, 1, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


class GAN(nn.Module):
    """The two players of Goodfellow et al. (2014), trained and cached together."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = Generator()
        self.discriminator = Discriminator()


def update_D(
    real: torch.Tensor,
    z: torch.Tensor,
    gan: GAN,
    optimizer: torch.optim.Optimizer,
) -> torch.Tensor:
    """One discriminator step: cross-entropy (chapter 1, eq. 2) of "real" on real images and
    "fake" on generated ones, the generator held fixed."""
    fake = gan.generator(z).detach()
    ones, zeros = torch.ones(len(real), device=real.device), torch.zeros(len(z), device=z.device)
    loss = (
        train.binary_cross_entropy(gan.discriminator(real), ones)
        + train.binary_cross_entropy(gan.discriminator(fake), zeros)
    ) / 2
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def update_G(z: torch.Tensor, gan: GAN, optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """One generator step: make the discriminator call generated images "real" (the
    non-saturating loss of Goodfellow et al., 2014)."""
    logits = gan.discriminator(gan.generator(z))
    loss = train.binary_cross_entropy(logits, torch.ones_like(logits))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def gan_step(gan: GAN, config: train.TrainConfig) -> train.Step:
    """The GAN's step for :func:`lib.train.fit`: one optimiser per player, and per batch of
    real images (in ``[0, 1]``) :func:`update_D`, then :func:`update_G`; returns both losses."""
    optimizer_D = train.make_optimizer(gan.discriminator.parameters(), config)
    optimizer_G = train.make_optimizer(gan.generator.parameters(), config)

    def step(real: torch.Tensor, _targets: torch.Tensor) -> torch.Tensor:
        real = 2 * real - 1  # the generator's tanh range
        z = torch.randn(len(real), gan.generator.latent, device=real.device)
        loss_D = update_D(real, z, gan, optimizer_D)
        loss_G = update_G(z, gan, optimizer_G)
        return torch.stack([loss_D, loss_G])

    return step


gan_step.calls = (update_D, update_G)  # read by the cache key: their code changes the model


@train.course_model
@functools.cache  # one training (or loading) per process: the chapter asks for it twice
def trained_generator() -> Generator:
    """The course's generator, trained on :func:`lib.data.natural_patches` or loaded from the
    course cache (``python -m lib course-models`` trains it ahead of time). Its key takes the
    patches' fingerprint from the course cache's stored index, so loading it crops none."""
    digest = train.stored_fingerprint(
        "natural-patches", data.natural_patches_recipe(train=True), _generator_data
    )
    gan = train.load_cached(GAN, digest, GAN_CONFIG, "generator", gan_step, course=True)
    if gan is not None:
        return gan.generator.eval()
    gan, _ = train.train_cached(
        GAN, *_generator_data(), GAN_CONFIG, name="generator", step=gan_step, course=True
    )
    return gan.generator.eval()


def _generator_data() -> tuple[torch.Tensor, torch.Tensor]:
    """The generator's training data: real patches, and the targets its loop ignores."""
    patches = data.natural_patches(train=True)
    return patches, torch.zeros(len(patches))


@torch.no_grad()
def sample(generator: Generator, count: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """``count`` generated images ``[N, 3, 32, 32]`` in ``[0, 1]`` (like the real patches),
    from latent vectors drawn with ``seed``: the same seed gives the same images."""
    device = next(generator.parameters()).device
    z = torch.randn(count, generator.latent, generator=torch.Generator().manual_seed(seed))
    generator.eval()
    images = [generator(chunk.to(device)).cpu() for chunk in z.split(batch_size)]
    return (torch.cat(images) + 1) / 2


def real_and_fake(
    train_split: bool = True, seed: int = 0, count: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chapter 2's data: images and labels (0 real, 1 fake) of one split.

    By default the real images are :func:`lib.data.natural_patches` (``count`` of them, or its
    default) and as many fakes come from the course's generator (other latent seeds for the
    test split). With
    ``$XNN_REAL_FAKE_DIR`` set, both come from that folder instead
    (:func:`lib.data.load_real_fake_folder`, e.g. FFHQ faces against StyleGAN's), split 80/20
    with a fixed seed; ``$XNN_REAL_FAKE_PER_CLASS`` (default 2,000) caps the images per class.
    """
    folder = os.environ.get(data.REAL_FAKE_DIR_ENV)
    if folder:
        per_class = int(os.environ.get("XNN_REAL_FAKE_PER_CLASS", "2000"))
        images, labels = data.load_real_fake_folder(folder, per_class=per_class)
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        cut = int(0.8 * len(order))
        chosen = order[:cut] if train_split else order[cut:]
        return images[chosen], labels[chosen]
    real = data.natural_patches(train=train_split, count=count)
    fake = sample(trained_generator(), len(real), seed=seed if train_split else seed + 1)
    labels = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))]).long()
    return torch.cat([real, fake]), labels
