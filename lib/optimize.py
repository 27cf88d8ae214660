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

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``objective(x) - penalty(x)`` over the inputs ``x``, from ``start``.

    Each input of the batch is optimised on its own (the objectives are summed only to get all
    their gradients in one backward pass). Returns the final inputs and the history of the
    objective, ``[steps + 1, N]`` on the CPU: row 0 is the start, row ``k`` after step ``k``.
    The penalty shapes the ascent but is not part of the history.
    """
    if steps < 0:
        raise ValueError(f"steps={steps!r} must be at least 0.")
    x = start.detach().clone()
    history = []
    for step in range(steps + 1):
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
