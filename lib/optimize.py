"""Input optimisation: turn training around and optimise the input instead of the weights.

Training fixes the input and moves the weights ``theta``; here the weights stay fixed and the
input moves, to find what makes one neuron "extremely happy" (chapter 3, eq. 3):

    x* = argmax_x  y_i = f(x, theta)

Erhan et al. (2009), "Visualizing higher-layer features of a deep network", call this
activation maximisation. The core, :func:`gradient_ascent`, takes the objective, an optional
penalty and an update rule, so that other recipes are built on it too: chapter 3's
:func:`maximize_activation` (eq. 3, steps of a fixed size with mu-sigma normalisation) and
chapter 4's class model visualisation of Simonyan et al. (2013), which subtracts an L2
penalty, ``S_c(x) - lambda ||x||^2``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lib import data, models, train
from lib.device import get_device
from lib.models import ImageNetModel

#: What is maximised: a batch of inputs ``[N, ...]`` -> one value per input ``[N]``.
Objective = Callable[[torch.Tensor], torch.Tensor]
#: One step of the ascent: ``(inputs, gradient of the objective) -> new inputs``.
Update = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: A target: an output index (a class, or a channel averaged over its positions), or a full
#: index of one neuron in a layer's output, such as ``(channel, row, column)``.
Target = int | tuple[int, ...]

#: Keeps the mu-sigma normalisation finite on a constant image.
_EPS = 1e-8


def mu_sigma_normalize(x: torch.Tensor) -> torch.Tensor:
    """Each input shifted and scaled to mean 0 and standard deviation 1 (chapter 3's recipe).

    Without it the ascent could raise an activation by scaling the whole image up; with it
    only the *pattern* can change."""
    dims = tuple(range(1, x.dim()))
    mu = x.mean(dim=dims, keepdim=True)
    sigma = x.std(dim=dims, keepdim=True, correction=0)
    return (x - mu) / (sigma + _EPS)


def ascent_step(step_size: float = 1.0, normalize: bool = True) -> Update:
    """The update of eq. 3: ``x <- x + step_size * grad``, then mu-sigma normalisation."""
    if step_size <= 0:
        raise ValueError(f"step_size={step_size!r} must be positive.")

    def update(x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        x = x + step_size * gradient
        return mu_sigma_normalize(x) if normalize else x

    return update


def gradient_ascent(
    objective: Objective,
    start: torch.Tensor,
    steps: int,
    update: Update,
    penalty: Objective | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``objective(x) - penalty(x)`` over the inputs ``x``, from ``start``.

    Each input of the batch is optimised on its own (the objectives are summed only to get all
    their gradients in one backward pass). Returns the final inputs and the history of the
    objective, ``[steps + 1, N]`` on the CPU: row 0 is the start, row ``k`` after step ``k``.
    The penalty shapes the ascent but is not part of the history. ``progress`` shows a
    progress bar (for ascents of minutes; ``TQDM_DISABLE=1`` hides it).
    """
    if steps < 0:
        raise ValueError(f"steps={steps!r} must be at least 0.")
    x = start.detach().clone()
    history = []
    quiet = not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    for step in tqdm(range(steps + 1), desc="ascent", leave=False, disable=quiet):
        x.requires_grad_(True)
        with torch.enable_grad():  # works inside a caller's torch.no_grad() too
            value = objective(x)
        if value.shape != x.shape[:1]:
            raise ValueError(
                f"the objective returned shape {tuple(value.shape)}; it must return one value "
                f"per input, shape ({len(x)},)."
            )
        history.append(value.detach())
        if step == steps:
            break
        with torch.enable_grad():
            total = value if penalty is None else value - penalty(x)
            (gradient,) = torch.autograd.grad(total.sum(), x)
        with torch.no_grad():
            x = update(x.detach(), gradient)
    return x.detach(), torch.stack(history).cpu()


@contextmanager
def record_output(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record what ``module`` outputs, through a forward hook, while the block runs.

    The list holds the latest output only, so a loop of forward passes keeps no graphs alive.
    """
    seen: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        seen[:] = [output]

    handle = module.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def select(outputs: torch.Tensor, targets: Sequence[Target]) -> torch.Tensor:
    """Input ``n``'s activation of ``targets[n]``: ``outputs[n][target]``, averaged over what
    the index leaves (an int picks a class, or a whole channel of a convolution)."""
    if len(targets) != len(outputs):
        raise ValueError(f"{len(targets)} targets for a batch of {len(outputs)} inputs.")
    values = []
    for output, target in zip(outputs, targets, strict=True):
        index = target if isinstance(target, tuple) else (target,)
        if len(index) > output.dim() or any(
            not -size <= i < size for i, size in zip(index, output.shape, strict=False)
        ):
            raise IndexError(
                f"target {target!r} is not an index into an output of shape "
                f"{tuple(output.shape)}; use a class/channel number or a full neuron index."
            )
        values.append(output[index].mean())
    return torch.stack(values)


def _resolve_layer(model: nn.Module, layer: nn.Module | str | None) -> nn.Module | None:
    if layer is None or isinstance(layer, nn.Module):
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError as error:
        names = [name for name, _ in model.named_modules() if name]
        raise ValueError(
            f"layer={layer!r} is not a module of {type(model).__name__}; its layers are: "
            f"{', '.join(names)}."
        ) from error


def activation(
    model: nn.Module, targets: Sequence[Target], layer: nn.Module | str | None = None
) -> Objective:
    """The objective ``x -> y_i = f(x, theta)`` of eq. 3 for each input's target: an output
    of the model (``layer=None``) or of one of its layers (a module or its name)."""
    module = _resolve_layer(model, layer)
    targets = list(targets)

    def objective(x: torch.Tensor) -> torch.Tensor:
        if module is None:
            return select(model(x), targets)
        with record_output(module) as seen:
            model(x)
        return select(seen[0], targets)

    return objective


def starting_images(
    kind: str, count: int, shape: Sequence[int], device: torch.device, seed: int = 0
) -> torch.Tensor:
    """``count`` starting inputs of ``shape``: all ones (the lecture's ``x = 1``) or seeded
    uniform noise in ``[0, 1)``."""
    size = (count, *shape)
    if kind == "ones":
        return torch.ones(size, device=device)
    if kind == "random":
        generator = torch.Generator().manual_seed(seed)
        return torch.rand(size, generator=generator).to(device)
    raise ValueError(f"start={kind!r} is not a starting image; use 'ones' or 'random'.")


def maximize_activation(
    model: nn.Module,
    targets: Sequence[Target],
    shape: Sequence[int],
    steps: int = 100,
    step_size: float = 1.0,
    start: str = "ones",
    normalize: bool = True,
    layer: nn.Module | str | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each target neuron's favourite input, by gradient ascent on the input (eq. 3).

    ``targets`` holds one target per input, all optimised in one batch: output indices of
    ``model`` (e.g. the ten digits), or, with ``layer``, indices into that layer's output (a
    channel, or a full ``(channel, row, column)`` neuron). ``shape`` is one input's shape, e.g.
    ``(1, 28, 28)``. The lecture's recipe is the default: start from ``x = 1``, steps of size
    one along the gradient, mu-sigma normalisation after every step (Erhan et al., 2009).

    Returns the inputs ``[N, *shape]`` on the model's device and the history of the target
    activations ``[steps + 1, N]`` (row 0: the start).
    """
    device = next(model.parameters()).device
    x0 = starting_images(start, len(targets), shape, device, seed)
    objective = activation(model, targets, layer)
    return gradient_ascent(objective, x0, steps, ascent_step(step_size, normalize))


def l2_penalty(l2: float) -> Objective:
    """``lambda * ||x||_2^2`` per input: the regulariser of eq. 4 (chapter 4), the *squared*
    Euclidean norm as Simonyan et al. (2013) write it, not the norm itself."""
    if not l2 >= 0:
        raise ValueError(f"l2={l2!r} must be a non-negative number (lambda of eq. 4).")

    def penalty(x: torch.Tensor) -> torch.Tensor:
        return l2 * x.pow(2).flatten(start_dim=1).sum(dim=1)

    return penalty


def class_model_visualization(
    model: nn.Module,
    targets: Sequence[int],
    shape: Sequence[int],
    l2: float = 0.1,
    steps: int = 100,
    lr: float = 0.1,
    transforms: Transform | None = None,
    parameterization: FourierImage | None = None,
    seed: int = 0,
    layer: nn.Module | str | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class models after Simonyan, Vedaldi and Zisserman (2013), section 2 (chapter 4, eq. 4):

        I* = argmax_I  S_c(I) - lambda ||I||_2^2

    with ``S_c`` the unnormalised score (logit) of class ``c`` and ``lambda = l2``. Gradient
    ascent from the zero image with step size ``lr`` and no normalisation, on
    :func:`gradient_ascent`, the core of chapter 3's :func:`maximize_activation`. ``targets``
    holds one class per image, all optimised in one batch; ``shape`` is one input's shape,
    e.g. ``(1, 28, 28)``. The zero image is the model's zero input: for a network fed
    mean-subtracted images, as in the paper, it is the mean image.

    The regularisers of Olah et al. (2017) and Mordvintsev et al. (2018), both off by default
    (then this is eq. 4 alone):

    - ``transforms`` (:func:`random_transforms`): the score is taken of a randomly moved copy
      of the image at every step (transformation robustness);
    - ``parameterization`` (:class:`FourierImage`): the ascent moves the image's decorrelated
      Fourier spectrum, from ``seed``'s faint noise, with Adam steps of size ``lr``
      (:func:`adam_step`); the penalty, if any, is on the image it gives.

    With ``layer`` (a module or its name) the targets are channels of that layer, each
    averaged over its positions, instead of classes: feature visualisation of hidden units.
    ``progress`` shows a progress bar.

    Returns the images ``[N, *shape]`` on the model's device and the history of their class
    scores ``S_c`` ``[steps + 1, N]`` (row 0: the start; the penalty is not included).
    """
    device = next(model.parameters()).device
    targets = [targets] if isinstance(targets, int) else list(targets)
    score = activation(model, targets, layer)
    image = parameterization or (lambda x: x)
    if parameterization is None:
        start = torch.zeros(len(targets), *shape, device=device)
        update = ascent_step(lr, normalize=False)
    else:
        start = parameterization.start(len(targets), device, seed)
        update = adam_step(lr)
    moved = transforms or (lambda x: x)
    penalty = l2_penalty(l2)
    x, history = gradient_ascent(
        lambda x: score(moved(image(x))),
        start,
        steps,
        update,
        (lambda x: penalty(image(x))) if l2 else None,
        progress,
    )
    return image(x).detach(), history


# --- Regularised input optimisation (chapters 3 and 4) --------------------------------------
# Plain eq. 3 and eq. 4 find images that raise a score, but on a deep network these are
# patterns of high frequencies that fool it rather than pictures of what it has learned.
# Olah, Mordvintsev and Schubert (2017), "Feature Visualization", and Mordvintsev et al.
# (2018), "Differentiable Image Parameterizations", steer the ascent towards natural images
# with two priors, each an argument of :func:`class_model_visualization`, off by default:
# transformation robustness (:func:`random_transforms`) and a decorrelated Fourier
# parameterisation (:class:`FourierImage`).

#: An image transformation ``[N, C, H, W] -> [N, C, H, W]``, differentiable in its input.
Transform = Callable[[torch.Tensor], torch.Tensor]


def random_transforms(
    jitter: int = 0,
    scale: tuple[float, float] = (1.0, 1.0),
    degrees: float = 0.0,
    seed: int = 0,
) -> Transform:
    """Transformation robustness (Olah et al., 2017): each call shifts every image by its own
    random offset of up to ``jitter`` pixels, zooms it by a factor drawn from ``scale`` (above
    one: a crop, enlarged) and rotates it by up to ``degrees`` either way, mirroring the image
    at its borders. Differentiable, so that an ascent through it favours images whose score
    survives being moved, as a photo's does. Seeded: the same calls give the same draws."""
    if jitter < 0 or degrees < 0 or not 0 < scale[0] <= scale[1]:
        raise ValueError(
            f"jitter={jitter!r}, scale={scale!r}, degrees={degrees!r}: jitter and degrees "
            "must be at least 0, scale a range (low, high) with 0 < low <= high."
        )
    generator = torch.Generator().manual_seed(seed)

    def transform(images: torch.Tensor) -> torch.Tensor:
        count, _, height, width = images.shape
        low, high = scale
        zoom = low + (high - low) * torch.rand(count, generator=generator)
        angle = torch.deg2rad(degrees * (2 * torch.rand(count, generator=generator) - 1))
        shift = torch.randint(-jitter, jitter + 1, (count, 2), generator=generator)
        # affine_grid maps each output position to where it samples the input, in [-1, 1].
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        offset = 2 * shift / torch.tensor([width, height])
        theta = torch.stack(
            [torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)],
            1,
        ).to(images)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, padding_mode="reflection", align_corners=False)

    return transform


def colour_correlation(photos: torch.Tensor) -> torch.Tensor:
    """The square root of the colour covariance of ``photos`` (``[N, 3, H, W]``), a 3x3
    matrix ``C`` with ``C C^T = Cov``: it turns three uncorrelated numbers into a colour with
    the photos' correlations (Olah et al., 2017, "decorrelated space"), scaled so that its
    largest column has norm one."""
    pixels = photos.detach().float().permute(1, 0, 2, 3).reshape(3, -1)
    eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(pixels))
    root = eigenvectors @ torch.diag(eigenvalues.clamp(min=0).sqrt())
    return root / root.norm(dim=0).max()


class FourierImage:
    """Images parameterised by their Fourier spectrum (Mordvintsev et al., 2018, section 2).

    The ascent moves the spectrum ``z`` (real and imaginary parts), and the image is

        x = sigmoid(C . irfft2(z / f^decay))

    with ``f`` each coefficient's spatial frequency: a step of the same size changes low
    frequencies as much as high ones, where in pixel space the gradient is dominated by high
    frequencies. ``colour`` (a 3x3 matrix, :func:`colour_correlation`) mixes the channels as
    the colours of photos correlate; ``None`` leaves them alone. The sigmoid keeps every pixel
    in ``(0, 1)``. ``shape`` is one image's ``(C, H, W)``.
    """

    def __init__(
        self, shape: Sequence[int], decay: float = 1.0, colour: torch.Tensor | None = None
    ) -> None:
        channels, height, width = shape
        if colour is not None and tuple(colour.shape) != (channels, channels):
            raise ValueError(f"colour has shape {tuple(colour.shape)}; give {channels}x{channels}.")
        self.shape = (channels, height, width)
        frequencies = torch.sqrt(
            torch.fft.fftfreq(height)[:, None] ** 2 + torch.fft.rfftfreq(width)[None] ** 2
        )
        # The constant term gets the weight of the lowest frequency, not an infinite one.
        self.scale = frequencies.clamp(min=1.0 / max(height, width)) ** -decay
        self.colour = colour

    def start(self, count: int, device: torch.device, seed: int = 0) -> torch.Tensor:
        """``count`` small random spectra ``[count, C, H, W // 2 + 1, 2]``: grey images with
        faint noise."""
        size = (count, *self.shape[:2], self.shape[2] // 2 + 1, 2)
        generator = torch.Generator().manual_seed(seed)
        return (0.01 * torch.randn(size, generator=generator)).to(device)

    def __call__(self, spectra: torch.Tensor) -> torch.Tensor:
        scale = self.scale.to(spectra.device)
        height, width = self.shape[1:]
        images = torch.fft.irfft2(torch.view_as_complex(spectra) * scale, s=(height, width))
        # irfft2 divides by H W; this brings a unit spectrum back to pixels of order one.
        images = images * (height * width) ** 0.5 / 4
        if self.colour is not None:
            images = torch.einsum("ij,njhw->nihw", self.colour.to(images), images)
        return torch.sigmoid(images)


def adam_step(lr: float = 0.05) -> Update:
    """An ascent step of Adam (torch's), for the spectra of :class:`FourierImage`, as Olah et
    al. (2017) optimise theirs: each coefficient's step is scaled by its own gradient history.
    Stateful: make one per ascent."""
    if lr <= 0:
        raise ValueError(f"lr={lr!r} must be positive.")
    state: dict[str, object] = {}

    def update(x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        if "x" not in state:
            state["x"] = nn.Parameter(x.clone())
            state["adam"] = torch.optim.Adam([state["x"]], lr=lr)
        parameter = state["x"]
        parameter.data.copy_(x)
        parameter.grad = -gradient  # Adam descends; the ascent climbs
        state["adam"].step()
        return parameter.detach().clone()

    return update


def robustness(
    model: nn.Module,
    images: torch.Tensor,
    targets: Sequence[int],
    transforms: Transform,
    count: int = 32,
) -> torch.Tensor:
    """The share of ``count`` transformed copies of each image that ``model`` classifies as
    that image's target (``[N]``, on the CPU): how well a class model survives being cropped,
    shifted and rescaled. A picture of a goose stays a goose; an adversarial pattern that
    fools the network at one position and size does not (Olah et al., 2017)."""
    targets = torch.as_tensor(list(targets), device=images.device)
    hits = torch.zeros(len(images))
    with torch.no_grad():
        for _ in range(count):
            hits += (model(transforms(images)).argmax(1) == targets).float().cpu()
    return hits / count


# --- The ImageNet pictures of chapters 3 and 4, computed once ------------------------------
# Hundreds of steps through an ImageNet network take minutes on a CPU: too long for a chapter.
# Like a course model, each picture is computed once by `python -m lib course-models` and
# kept in the course cache, under a key of everything that changes it.


@dataclass(frozen=True)
class Recipe:
    """How a regularised picture of an ImageNet network is optimised (Olah et al., 2017):
    a decorrelated Fourier image of ``size`` pixels a side, ``steps`` Adam steps of ``lr``,
    each on a copy moved by :func:`random_transforms` (``jitter``, ``scale``, ``degrees``)."""

    size: int = 160
    steps: int = 96
    lr: float = 0.05
    jitter: int = 10
    scale: tuple[float, float] = (0.9, 1.1)
    degrees: float = 10.0
    decay: float = 1.0
    seed: int = 0


#: Chapter 4's plain eq. 4 on an ImageNet network: lambda, steps and step size, from the mean
#: image in the network's normalised input. Steps small enough that the ascent is no longer
#: chaotic: with 14 steps of 2.5, rounding (another thread count, another processor) decided
#: which class some images ended in; these 40 steps give every class a lead of 7 logits or
#: more over its runner-up, at 1 and 2 threads and from starts moved by 1e-5.
PLAIN_EQ4 = {"l2": 0.01, "steps": 40, "lr": 0.5}
#: The ImageNet classes of chapter 4's class models: things a reader can name at a glance.
CLASS_MODEL_CLASSES = tuple(
    "goose flamingo goldfish strawberry ostrich lemon zebra peacock".split()
)
#: Their recipe: 288 steps on 160 pixels, a few minutes on two CPU cores. At 96 steps the
#: classes are colours and textures; the shapes (a goose's head, a zebra's stripes on a
#: body, lemons cut in half) come in the later steps.
CLASS_MODEL_RECIPE = Recipe(steps=288)
#: The middle layer of MobileNetV2 whose channels chapter 3 shows, which channels, and how.
HIDDEN_LAYER, HIDDEN_CHANNELS = "features.9", (0, 1, 2, 3)
HIDDEN_RECIPE = Recipe(size=128, jitter=8)


def regularised_visualization(
    net: ImageNetModel,
    targets: Sequence[int],
    recipe: Recipe = Recipe(),
    layer: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Regularised class models (or, with ``layer``, channel visualisations) of an ImageNet
    network: :func:`class_model_visualization` in pixels with both regularisers of Olah et al.
    (2017) and Mordvintsev et al. (2018), colours decorrelated as in the course's photos.
    Returns images ``[N, 3, size, size]`` in ``[0, 1]`` and the score history."""
    shape = (3, recipe.size, recipe.size)
    colour = colour_correlation(data.photos())
    model = net.on_pixels()
    return class_model_visualization(
        model,
        targets,
        shape,
        l2=0.0,
        steps=recipe.steps,
        lr=recipe.lr,
        transforms=random_transforms(recipe.jitter, recipe.scale, recipe.degrees, recipe.seed),
        parameterization=FourierImage(shape, recipe.decay, colour),
        seed=recipe.seed,
        layer=None if layer is None else model[1].get_submodule(layer),
        progress=True,
    )


def plain_class_models(net: ImageNetModel, targets: Sequence[int]) -> tuple[torch.Tensor, ...]:
    """Eq. 4 alone on an ImageNet network (:data:`PLAIN_EQ4`), from the mean image: the
    network's zero input. Returns the images in pixels, clipped to ``[0, 1]``, and the scores."""
    images, scores = class_model_visualization(net.model, targets, (3, 224, 224), **PLAIN_EQ4)
    mean = torch.tensor(net.preprocess.mean, device=images.device).view(3, 1, 1)
    std = torch.tensor(net.preprocess.std, device=images.device).view(3, 1, 1)
    return (images * std + mean).clamp(0, 1), scores


#: The code whose change means a cached picture must be computed again.
_PICTURE_CODE = (
    gradient_ascent,
    activation,
    select,
    ascent_step,
    l2_penalty,
    class_model_visualization,
    random_transforms,
    colour_correlation,
    FourierImage,
    adam_step,
    regularised_visualization,
    plain_class_models,
)


def _cached_pictures(
    name: str, net: ImageNetModel, settings: dict, compute: Callable[[], dict]
) -> dict[str, torch.Tensor]:
    """``compute()``'s tensors, from the course cache when this network (its weights), these
    ``settings`` and this code computed them before; else computed and kept there."""
    parts = {
        "network": net.name,
        "weights": train.fingerprint(*net.model.state_dict().values()),
        "settings": settings,
        "code": [train._code_digest(f) for f in _PICTURE_CODE],
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    path = train.course_cache_dir() / f"{name}-{net.name}-{key}.pt"
    shown = os.path.relpath(path.parent)
    if path.is_file():
        print(f"{name}: loaded from {shown}")
        return torch.load(path, map_location=get_device(), weights_only=True)
    start = time.perf_counter()
    pictures = {k: v.detach().cpu() for k, v in compute().items()}
    seconds = time.perf_counter() - start
    kept = train._save(pictures, path)
    where = f"kept in {shown}" if kept else f"not kept, {shown} is read-only"
    print(f"{name}: computed in {seconds:.0f} s, {where}")
    return {k: v.to(get_device()) for k, v in pictures.items()}


@train.course_model
def imagenet_class_models(net: ImageNetModel | None = None) -> dict[str, torch.Tensor] | None:
    """Chapter 4's ImageNet class models of :data:`CLASS_MODEL_CLASSES`: eq. 4 alone
    (``"plain"``, ``"plain_scores"``) and regularised (``"regularised"``, ``"scores"``), with
    the class indices (``"classes"``). Computed once per network and kept in the course
    cache (``python -m lib course-models`` does it ahead of the book); ``None`` without an
    ImageNet network."""
    net = net or models.load_imagenet_model()
    if net is None:
        return None
    classes = [net.categories.index(name) for name in CLASS_MODEL_CLASSES]
    recipe = CLASS_MODEL_RECIPE

    def compute() -> dict[str, torch.Tensor]:
        plain, plain_scores = plain_class_models(net, classes)
        regularised, scores = regularised_visualization(net, classes, recipe)
        return {
            "classes": torch.tensor(classes),
            "plain": plain,
            "plain_scores": plain_scores,
            "regularised": regularised,
            "scores": scores,
        }

    settings = {"classes": classes, "plain": PLAIN_EQ4, "recipe": asdict(recipe)}
    return _cached_pictures("imagenet_class_models", net, settings, compute)


@train.course_model
def imagenet_channels(net: ImageNetModel | None = None) -> dict[str, torch.Tensor] | None:
    """Chapter 3's favourite inputs of :data:`HIDDEN_CHANNELS` of the middle layer
    :data:`HIDDEN_LAYER` of MobileNetV2, regularised (``"images"``, ``"scores"``). Computed once
    and kept in the course cache; ``None`` without the network or for another one."""
    net = net or models.load_imagenet_model()
    if net is None or net.name != models.LOCAL_IMAGENET_MODEL:
        return None
    recipe = HIDDEN_RECIPE

    def compute() -> dict[str, torch.Tensor]:
        images, scores = regularised_visualization(net, HIDDEN_CHANNELS, recipe, HIDDEN_LAYER)
        return {"images": images, "scores": scores}

    settings = {"layer": HIDDEN_LAYER, "channels": HIDDEN_CHANNELS, "recipe": asdict(recipe)}
    return _cached_pictures("imagenet_channels", net, settings, compute)
