"""Attribution: which input pixels an output neuron owes its value to (chapters 4 to 6), and
whether a map can be trusted to say so (chapter 6).

- The image-specific class saliency map (chapter 4) after Simonyan, Vedaldi and Zisserman
  (2013), "Deep inside convolutional networks: visualising image classification models and
  saliency maps": the magnitude of the class score's gradient with respect to the image; the
  gradient itself and gradient x input (chapter 6).
- Integrated gradients (chapter 5, eq. 5) after Sundararajan, Taly and Yan (2017), "Axiomatic
  attribution for deep networks", computed as an exact quadrature of the path integral,
  vectorised over images and steps, on any device; with black, blurred or uniform-noise
  baselines, or an expectation over several (chapter 6) after Sturmfels, Lundberg and Lee
  (2020), "Visualizing the impact of feature attribution baselines".
- SmoothGrad and SmoothGrad-squared (chapter 6) after Smilkov et al. (2017), "SmoothGrad:
  removing noise by adding noise", for any attribution function of this module.
- The sanity checks of Adebayo et al. (2018), "Sanity checks for saliency maps" (chapter 6):
  the cascading model-parameter randomisation test, compared by Spearman's rank correlation
  and SSIM; and the deletion and insertion curves of Petsiuk, Das and Saenko (2018), "RISE:
  randomized input sampling for explanation of black-box models", a measure of faithfulness.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else fallback


def _pick(outputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """The target neuron's output per example: ``F`` in eq. 5."""
    if targets is None:
        if outputs.dim() > 1 and outputs[0].numel() != 1:
            raise ValueError(
                f"the model has {outputs[0].numel()} outputs per example; pass targets= "
                "(one output index per input) to say which one to explain."
            )
        return outputs.reshape(len(outputs))
    return outputs.reshape(len(outputs), -1).gather(1, targets[:, None]).squeeze(1)


def _as_targets(targets, count: int, device: torch.device) -> torch.Tensor | None:
    if targets is None:
        return None
    targets = torch.as_tensor(targets, device=device, dtype=torch.long).reshape(-1)
    if len(targets) == 1:
        return targets.expand(count)
    if len(targets) != count:
        raise ValueError(f"targets has {len(targets)} entries for {count} inputs; give one each.")
    return targets


def saliency_map(
    model: nn.Module, inputs: torch.Tensor, targets: int | Sequence[int] | torch.Tensor
) -> torch.Tensor:
    """Image-specific class saliency ``M_ij = max_c |dS_t(I) / dI_cij|`` (chapter 4) after
    Simonyan, Vedaldi and Zisserman (2013), section 3.1.

    ``S_t`` is the unnormalised score (the logit, before any softmax) of class ``t``, so the
    map says which pixels would change the score most when nudged; the maximum over the
    colour channels ``c`` gives one value per pixel.

    - ``inputs``: images ``[N, C, H, W]`` (e.g. ``[N, 1, 28, 28]`` or ``[N, 3, 224, 224]``);
      ``targets``: one class per image, or one class for all. Returns ``[N, H, W]``.
    - The model must return scores ``[N, classes]``; put it in ``eval()`` mode first (dropout
      would make the gradient random). It runs on the model's device, which it never
      changes, and the maps come back on the inputs' device. Parameter gradients are left
      untouched.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4 or len(inputs) == 0:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs)
        raise ValueError(
            f"inputs must be images [N, C, H, W] with N >= 1, got {shape}; "
            "add a batch axis with inputs[None] for a single image."
        )
    device = _model_device(model, inputs.device)
    if not inputs.is_floating_point():
        raise ValueError(f"inputs have dtype {inputs.dtype}; convert the images to floats.")
    images = inputs.detach().to(device).requires_grad_(True)
    chosen = _as_targets(targets, len(images), device)
    if chosen is None:
        raise ValueError("saliency_map needs targets: one class per image, or one for all.")
    with torch.enable_grad():
        scores = model(images)
        if scores.dim() != 2 or len(scores) != len(images):
            raise ValueError(
                f"saliency_map needs class scores [N, classes] from the model, got "
                f"{tuple(scores.shape)}; give it a multi-class model (logits, no softmax)."
            )
        if not bool(((chosen >= 0) & (chosen < scores.shape[1])).all()):
            raise ValueError(
                f"targets {chosen.tolist()} must be classes in 0..{scores.shape[1] - 1}."
            )
        # Images do not interact in eval mode, so the gradient of the summed scores is each
        # image's own gradient: one backward pass for the whole batch.
        (gradient,) = torch.autograd.grad(scores.gather(1, chosen[:, None]).sum(), images)
    return gradient.abs().amax(dim=1).to(inputs.device)


#: Quadrature rules for the path integral of eq. 5 (``riemann_right`` is eq. 5 itself).
METHODS = ("riemann_left", "riemann_right", "riemann_middle", "trapezoid", "gauss_legendre")
#: Rules whose points at ``m`` steps are among those at ``2 m`` (reused by ``steps="auto"``).
NESTED = ("riemann_left", "riemann_right", "trapezoid")
#: Activation memory per forward-backward pass on the CPU. With 2 threads, chapter 3's MNIST
#: CNN (150 kB of activations per point) ran 100 images x 50 steps in 0.75 s with 64 points
#: per pass, 1.7 s with 225 and 2.0 s with all 5,000 at once: small passes stay in the caches.
CPU_PASS_BYTES = 10 * 2**20
#: Share of the free GPU memory one pass may fill (the backward pass needs about as much
#: again as the forward pass keeps).
CUDA_MEMORY_SHARE = 0.25


@functools.lru_cache(maxsize=32)
def _legendre(m: int) -> tuple[np.ndarray, np.ndarray]:
    # numpy's eigenvalue solve takes 1.5 s at m = 500, and steps="auto" asks for every m again.
    nodes, weights = np.polynomial.legendre.leggauss(m)
    nodes.flags.writeable = weights.flags.writeable = False
    return nodes, weights


def quadrature(method: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``alpha_k`` in ``[0, 1]`` and weights ``w_k`` (float64) with
    ``integral_0^1 g(alpha) d alpha ~ sum_k w_k g(alpha_k)``, using ``steps`` evaluations.

    ``riemann_right`` is eq. 5: ``alpha_k = k/m``, ``w_k = 1/m``. Every rule's weights sum
    to 1, so every rule is exact when ``g`` is constant, i.e. on a linear model. (Captum's
    ``riemann_trapezoid`` weights sum to ``1 - 1/m``.) ``trapezoid`` places its ``m`` points
    at both ends and between, ``m - 1`` intervals.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not a quadrature rule; use one of {METHODS}.")
    smallest = 2 if method == "trapezoid" else 1
    if not isinstance(steps, int) or steps < smallest:
        raise ValueError(f"steps={steps!r} must be an integer >= {smallest} for {method}.")
    m = steps
    k = np.arange(m, dtype=np.float64)
    weights = np.full(m, 1.0 / m)
    if method == "riemann_left":
        alphas = k / m
    elif method == "riemann_right":
        alphas = (k + 1) / m
    elif method == "riemann_middle":
        alphas = (k + 0.5) / m
    elif method == "trapezoid":
        alphas = k / (m - 1)
        weights = np.full(m, 1.0 / (m - 1))
        weights[[0, -1]] = 0.5 / (m - 1)
    else:
        nodes, gauss = _legendre(m)
        alphas, weights = (nodes + 1) / 2, gauss / gauss.sum()  # sum(gauss) is 2 up to rounding
    return torch.from_numpy(alphas), torch.from_numpy(weights)


def _activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of all layer outputs for one input: what a pass keeps per point."""
    total = [example.numel() * example.element_size()]

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            total.append(output.numel() * output.element_size())

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(total)


def auto_batch_size(model: nn.Module, example: torch.Tensor) -> int:
    """Points per forward-backward pass for inputs like ``example`` (``[1, ...]``, on the
    model's device): from the free memory on CUDA, :data:`CPU_PASS_BYTES` elsewhere."""
    per_point = max(_activation_bytes(model, example), 1)
    if example.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(example.device)
        return max(1, min(4096, int(CUDA_MEMORY_SHARE * free) // (2 * per_point)))
    return max(1, min(256, CPU_PASS_BYTES // per_point))


def _sum_dtype(inputs: torch.Tensor) -> torch.dtype:
    """float64 for the sums over the path (MPS has no float64: the inputs' own dtype there)."""
    return inputs.dtype if inputs.device.type == "mps" else torch.float64


def _per_example(values: torch.Tensor) -> torch.Tensor:
    """The sum over all but the first axis, ``[N, ...] -> [N]``; ``[N]`` stays as it is."""
    return values.reshape(len(values), -1).sum(1)


class _Path:
    """The straight line ``x' + alpha (x - x')`` from the baseline to each input (eq. 5),
    and the gradient of the target output along it, one chunk of points per pass."""

    def __init__(self, model, inputs, baselines, targets, batch_size, progress):
        self.model, self.inputs, self.baselines, self.targets = model, inputs, baselines, targets
        self.batch_size, self.progress = batch_size, progress

    def weighted_gradients(
        self, alphas: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``sum_k w_k dF(x' + alpha_k (x - x'))/dx`` for the inputs ``rows`` (all by
        default), all their points batched, at most ``batch_size`` per pass; summed in
        :func:`_sum_dtype`."""
        inputs, baselines, targets = self.inputs, self.baselines, self.targets
        if rows is not None:
            inputs, baselines = inputs[rows], baselines[rows]
            targets = targets[rows] if targets is not None else None
        count, steps = len(inputs), len(alphas)
        alphas = alphas.to(inputs.device, inputs.dtype)
        weights = weights.to(inputs.device, _sum_dtype(inputs))
        difference = inputs - baselines
        # index_add_ adds the steps one at a time: in float32, 500 steps lose 3e-5 of an
        # attribution of 7, so the sum is kept in float64.
        total = torch.zeros_like(inputs, dtype=weights.dtype)
        shape = (-1,) + (1,) * (inputs.dim() - 1)
        points = count * steps  # image-major: point p is image p // steps at step p % steps
        bar = tqdm(total=points, desc="IG points", leave=False, disable=not self.progress)
        for start in range(0, points, self.batch_size):
            index = torch.arange(start, min(start + self.batch_size, points), device=inputs.device)
            image, step = index // steps, index % steps
            path = baselines[image] + alphas[step].view(shape) * difference[image]
            path.requires_grad_(True)
            with torch.enable_grad():
                chosen = targets[image] if targets is not None else None
                score = _pick(self.model(path), chosen).sum()
                # The examples are independent, so the gradient of the sum is each one's own.
                (gradient,) = torch.autograd.grad(score, path)
            total.index_add_(0, image, gradient.to(total.dtype) * weights[step].view(shape))
            bar.update(len(index))
        bar.close()
        return total

    @torch.no_grad()
    def change(self) -> torch.Tensor:
        """``F(x) - F(x')`` per input: what complete attributions add up to."""
        size, targets = self.batch_size, self.targets
        count = -(-len(self.inputs) // size)
        chunks = targets.split(size) if targets is not None else [None] * count
        ends = [
            torch.cat(
                [_pick(self.model(c), t) for c, t in zip(images.split(size), chunks, strict=True)]
            )
            for images in (self.inputs, self.baselines)
        ]
        return ends[0] - ends[1]


def integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | torch.Tensor | list[int] | None,
    baseline: torch.Tensor | float | None = None,
    steps: int | str = 50,
    method: str = "riemann_right",
    batch_size: int | None = None,
    return_delta: bool = False,
    tolerance: float = 1e-2,
    max_steps: int = 1024,
    progress: bool = False,
):
    """Integrated gradients of ``model``'s output ``targets`` at ``inputs`` (chapter 5, eq. 5):

    ``IG_i(x) = (x_i - x'_i) * sum_k w_k dF(x' + alpha_k (x - x'))/dx_i``

    with ``alpha_k = k/m``, ``w_k = 1/m`` for ``method="riemann_right"`` (eq. 5; see
    :func:`quadrature` for the other rules), after Sundararajan, Taly and Yan (2017).

    - ``inputs``: ``[N, ...]``, ``[N]`` included (one number per example); ``targets``: one
      output index per input (or one for all; ``None`` for a model with one output);
      ``baseline``: ``x'``, broadcast to ``inputs``, black (zeros) by default.
    - All ``N * m`` points are batched, at most ``batch_size`` per forward-backward pass
      (``None``: :func:`auto_batch_size`), and their weighted gradients summed in float64.
      Runs on the model's device, which it never changes; the attributions come back on the
      inputs' device and in their dtype. Put the model in ``eval()`` mode first (dropout
      would make the gradients random).
    - ``return_delta=True`` also returns the completeness error per example,
      ``sum_i IG_i - (F(x) - F(x'))``, which is 0 for an exact integral.
    - ``steps="auto"`` doubles each example's ``m`` (from 8) until
      ``|delta| <= tolerance * |F(x) - F(x')|``, up to ``max_steps``, reusing the points
      computed so far for the nested rules (:data:`NESTED`). It also returns the ``m`` each
      example used, ``[N]``: ``(attributions, m)`` or ``(attributions, delta, m)``. A small
      ``delta`` is necessary, not sufficient: the errors of single inputs can cancel in the
      sum, so the attributions themselves may be further from the integral.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or len(inputs) == 0:
        raise ValueError("inputs must be a tensor [N, ...] with at least one example.")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1, or None to choose.")
    device = _model_device(model, inputs.device)
    x = inputs.detach().to(device)
    if not x.is_floating_point():
        raise ValueError(f"inputs have dtype {x.dtype}; integrated gradients need floats.")
    reference = torch.zeros((), dtype=x.dtype) if baseline is None else baseline
    reference = torch.as_tensor(reference, dtype=x.dtype).to(device)
    try:
        reference = torch.broadcast_to(reference, x.shape).contiguous()
    except RuntimeError as error:
        message = f"baseline of shape {tuple(reference.shape)} does not fit inputs {tuple(x.shape)}"
        raise ValueError(f"{message}; give one image or one per input.") from error
    chosen = _as_targets(targets, len(x), device)
    batch_size = batch_size or auto_batch_size(model, x[:1])
    quiet = os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    path = _Path(model, x, reference, chosen, batch_size, progress and not quiet)
    auto = steps == "auto"
    if auto:
        attributions, change, steps = _auto(path, method, tolerance, max_steps)
    else:
        attributions = (x - reference) * path.weighted_gradients(*quadrature(method, steps))
        change = path.change() if return_delta else None
    attributions = attributions.to(x.dtype)
    if return_delta:  # the error of the attributions returned, after rounding to x's dtype
        delta = _per_example(attributions) - change
    attributions = attributions.to(inputs.device)
    result = (attributions, delta.to(inputs.device)) if return_delta else (attributions,)
    result = result + (steps,) if auto else result
    return result if len(result) > 1 else result[0]


def _auto(path: _Path, method: str, tolerance: float, max_steps: int):
    """Double each example's ``m`` until its completeness error is within ``tolerance``;
    examples that meet it early stop there. Returns the attributions (in :func:`_sum_dtype`),
    ``F(x) - F(x')`` and each example's ``m``."""
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance={tolerance} must be a relative error in (0, 1).")
    change = path.change()
    scale = change.abs().clamp_min(torch.finfo(change.dtype).tiny)
    difference = path.inputs - path.baselines
    totals = torch.zeros_like(path.inputs, dtype=_sum_dtype(path.inputs))
    used = torch.zeros(len(change), dtype=torch.long)
    delta = torch.zeros_like(change, dtype=totals.dtype)
    active = torch.arange(len(change), device=change.device)
    m, first = 8 + (method == "trapezoid"), True
    while True:
        alphas, weights = quadrature(method, m)
        if first or method not in NESTED:
            totals[active] = path.weighted_gradients(alphas, weights, active)
        else:
            # The old points are every other one of the new grid; each of their weights halves.
            new = torch.ones(m, dtype=torch.bool)
            new[1 if method == "riemann_right" else 0 :: 2] = False
            fresh = path.weighted_gradients(alphas[new], weights[new], active)
            totals[active] = totals[active] / 2 + fresh
        first = False
        delta[active] = _per_example(difference[active] * totals[active]) - change[active]
        used[active.cpu()] = m
        met = delta[active].abs() <= tolerance * scale[active]
        active = active[~met]
        grown = 2 * m - (method == "trapezoid")
        if len(active) == 0 or grown > max_steps:
            break
        m = grown
    if len(active):
        worst = float((delta[active].abs() / scale[active]).max())
        warnings.warn(
            f"integrated_gradients: steps='auto' stopped at m={m} (max_steps={max_steps}) for "
            f"{len(active)} inputs, relative completeness error up to {worst:.2g} > tolerance "
            f"{tolerance}; raise max_steps or choose another rule.",
            stacklevel=3,
        )
    return difference * totals, change, used


# --- Chapter 6: gradients, SmoothGrad, baselines ----------------------------------------------

#: An attribution function of this module: ``(model, inputs, targets, **options)`` -> maps.
Attribute = Callable[..., torch.Tensor]


def _floats_on(model: nn.Module, inputs: torch.Tensor, who: str) -> torch.Tensor:
    """``inputs`` detached, on the model's device; a clear error for what no map can explain."""
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or len(inputs) == 0:
        raise ValueError(f"{who}: inputs must be a tensor [N, ...] with at least one example.")
    if not inputs.is_floating_point():
        raise ValueError(f"{who}: inputs have dtype {inputs.dtype}; convert them to floats.")
    return inputs.detach().to(_model_device(model, inputs.device))


def gradient(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor | None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """The gradient ``dF(x)/dx`` of each input's target output (chapter 6), signed, one value
    per input entry: the "gradient" map of Adebayo et al. (2018). Chapter 4's saliency map is
    its magnitude, the largest over the colour channels (Simonyan et al., 2013).

    ``inputs`` ``[N, ...]``; ``targets`` one output index per input, one for all, or ``None``
    for a model with one output. At most ``batch_size`` inputs per forward-backward pass
    (``None``: :func:`auto_batch_size`); runs on the model's device, returns on the inputs'.
    """
    x = _floats_on(model, inputs, "gradient")
    chosen = _as_targets(targets, len(x), x.device)
    size = batch_size or auto_batch_size(model, x[:1])
    parts = []
    for start in range(0, len(x), size):
        part = x[start : start + size].requires_grad_(True)
        picked = chosen[start : start + size] if chosen is not None else None
        with torch.enable_grad():
            # Inputs do not interact in eval mode: the gradient of the sum is each one's own.
            (grad,) = torch.autograd.grad(_pick(model(part), picked).sum(), part)
        parts.append(grad)
    return torch.cat(parts).to(inputs.device)


def gradient_times_input(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor | None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """``x * dF(x)/dx`` (chapter 6): the gradient weighted by the input, as in Adebayo et al.
    (2018). Integrated gradients with a black baseline and a single step (eq. 5, ``m = 1``)."""
    return inputs * gradient(model, inputs, targets, batch_size)


def smoothgrad(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor | None,
    attribute: Attribute = gradient,
    samples: int = 50,
    noise_level: float = 0.15,
    squared: bool = False,
    seed: int = 0,
    noise: torch.Tensor | None = None,
    batch_size: int | None = None,
    **options,
) -> torch.Tensor:
    """SmoothGrad of Smilkov et al. (2017), chapter 6, eq. (6.1): the mean of ``attribute``'s
    maps of ``samples`` noisy copies of each input,

    ``M_hat(x) = 1/n sum_k M(x + g_k)``, ``g_k ~ N(0, sigma^2)``,

    with ``sigma = noise_level * (max(x) - min(x))`` per input (the paper's noise level, 10 to
    20%). ``squared=True`` gives SmoothGrad-squared, the mean of the squared maps.

    - ``attribute``: any attribution function of this module (``gradient`` by default,
      ``saliency_map``, ``integrated_gradients``, ...); ``options`` go to it. Its maps are
      averaged as they are: ``saliency_map``'s magnitudes (chapter 4's map, one value per
      pixel; Captum's ``NoiseTunnel(Saliency)`` averages ``|gradient|``, its default), or
      ``gradient``'s signed values, whose noise partly cancels instead.
    - ``noise``: the ``g_k`` themselves, ``[N, samples, ...]``, instead of drawing them from a
      CPU generator seeded with ``seed`` (the same noise on every device).
    - At most ``batch_size`` noisy inputs per call of ``attribute`` (``None``:
      :func:`auto_batch_size`); the maps are summed in float64 and come back on the inputs'
      device, in their dtype.
    """
    x = _floats_on(model, inputs, "smoothgrad")
    if noise is None:
        if not isinstance(samples, int) or samples < 1 or noise_level < 0:
            raise ValueError(f"samples={samples!r} must be >= 1, noise_level={noise_level} >= 0.")
        spread = x.flatten(1).amax(1) - x.flatten(1).amin(1)
        generator = torch.Generator().manual_seed(seed)
        draws = torch.randn((len(x), samples, *x.shape[1:]), generator=generator, dtype=x.dtype)
        noise = draws.to(x.device) * (noise_level * spread).view(-1, 1, *[1] * (x.dim() - 1))
    elif noise.shape[0] != len(x) or noise.shape[2:] != x.shape[1:]:
        raise ValueError(
            f"noise has shape {tuple(noise.shape)}; give [N, samples, ...] = "
            f"[{len(x)}, samples, {', '.join(map(str, x.shape[1:]))}]."
        )
    count = noise.shape[1]
    chosen = _as_targets(targets, len(x), x.device)
    noisy = (x[:, None] + noise.to(x.device, x.dtype)).flatten(0, 1)
    owner = torch.arange(len(x), device=x.device).repeat_interleave(count)
    size = batch_size or auto_batch_size(model, x[:1])
    total = None  # the maps' shape is the attribution function's: saliency_map's has no colour
    for start in range(0, len(noisy), size):
        rows = owner[start : start + size]
        picked = chosen[rows] if chosen is not None else None
        maps = attribute(model, noisy[start : start + size], picked, **options).to(x.device)
        maps = maps.to(_sum_dtype(x))
        if total is None:
            total = torch.zeros((len(x), *maps.shape[1:]), dtype=maps.dtype, device=x.device)
        total.index_add_(0, rows, maps * maps if squared else maps)
    return (total / count).to(x.dtype).to(inputs.device)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Images ``[N, C, H, W]`` blurred by a Gaussian of ``sigma`` pixels (chapter 6): the
    blurred baseline of Sturmfels, Lundberg and Lee (2020), and the substrate of the insertion
    curve (Petsiuk et al., 2018). The kernel reaches 3 sigma; the edges are reflected."""
    if images.dim() != 4 or sigma <= 0:
        raise ValueError(f"gaussian_blur needs images [N, C, H, W] and sigma > 0, got {sigma}.")
    radius = min(math.ceil(3 * sigma), min(images.shape[-2:]) - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).repeat(images.shape[1], 1, 1, 1)  # [C, 1, 1, k]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    across = F.conv2d(padded, kernel, groups=images.shape[1])
    return F.conv2d(across, kernel.transpose(2, 3), groups=images.shape[1])


def uniform_baselines(
    inputs: torch.Tensor, count: int = 1, low: float = 0.0, high: float = 1.0, seed: int = 0
) -> torch.Tensor:
    """``count`` baselines per input, ``[count, N, ...]``, each entry uniform in ``[low,
    high]`` (chapter 6): the uniform baseline of Sturmfels, Lundberg and Lee (2020), drawn
    from a CPU generator seeded with ``seed``, on the inputs' device."""
    generator = torch.Generator().manual_seed(seed)
    draws = torch.rand((count, *inputs.shape), generator=generator, dtype=inputs.dtype)
    return (low + (high - low) * draws).to(inputs.device)


def expected_integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor | None,
    baselines: torch.Tensor,
    return_delta: bool = False,
    **options,
):
    """Integrated gradients averaged over ``K`` baselines (chapter 6, eq. (6.2)),
    ``1/K sum_k IG(x; x'_k)``, after Sturmfels, Lundberg and Lee (2020): no single baseline
    decides which pixels count as "missing".

    ``baselines``: ``[K, N, ...]`` (``K`` per input) or ``[K, ...]`` (the same ``K`` for all),
    e.g. :func:`uniform_baselines`. All ``K * N`` paths go to :func:`integrated_gradients` as
    one batch, with ``options`` (``steps``, ``method``, ``batch_size``). The attributions add
    up to ``F(x)`` minus the mean of the ``F(x'_k)``: ``return_delta=True`` also returns each
    input's error of that sum.
    """
    if baselines.dim() not in (inputs.dim(), inputs.dim() + 1):
        raise ValueError(
            f"baselines of shape {tuple(baselines.shape)} do not fit inputs "
            f"{tuple(inputs.shape)}; give [K, N, ...] or [K, ...]."
        )
    if baselines.dim() == inputs.dim():
        baselines = baselines[:, None]
    k, n = len(baselines), len(inputs)
    baselines = torch.broadcast_to(baselines, (k, *inputs.shape)).flatten(0, 1)
    chosen = _as_targets(targets, n, inputs.device)
    result = integrated_gradients(
        model,
        inputs.repeat(k, *[1] * (inputs.dim() - 1)),
        chosen.repeat(k) if chosen is not None else None,
        baselines,
        return_delta=return_delta,
        **options,
    )
    if return_delta:
        attributions, delta = result
        return attributions.view(k, *inputs.shape).mean(0), delta.view(k, n).mean(0)
    return result.view(k, *inputs.shape).mean(0)


# --- Chapter 6: do the maps depend on the network? Similarity of maps ---------------------------


def per_pixel(maps: torch.Tensor) -> torch.Tensor:
    """Maps ``[N, C, H, W]`` as one value per pixel, ``[N, H, W]``: the channels' sum, which
    keeps a signed map's total (as :func:`lib.plot.show_attributions` draws it); maps of
    another shape stay as they are."""
    return maps.sum(1) if maps.dim() == 4 else maps


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Each row's ranks, 1 to M, tied entries sharing their mean rank (as scipy's rankdata)."""
    ordered = values.sort(dim=1).values
    low = torch.searchsorted(ordered, values, right=False)
    high = torch.searchsorted(ordered, values, right=True)
    return (low + high + 1).double() / 2


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of each pair of examples ``a[i]``, ``b[i]`` (``[N, ...]``,
    all entries of an example compared), ``[N]`` in float64 (chapter 6, after Adebayo et al.,
    2018): the Pearson correlation of their ranks, ties given their mean rank, as
    ``scipy.stats.spearmanr``. An example whose entries are all equal has none (NaN)."""
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(
            f"rank_correlation compares [N, ...] with [N, ...], got "
            f"{tuple(a.shape)} and {tuple(b.shape)}."
        )
    ra = _ranks(a.detach().flatten(1).contiguous())
    rb = _ranks(b.detach().to(a.device).flatten(1).contiguous())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))


#: SSIM's window and constants, scikit-image's defaults (Wang et al., 2004).
SSIM_WINDOW, SSIM_K1, SSIM_K2 = 7, 0.01, 0.03


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """The mean structural similarity (SSIM) of each pair of images ``[N, H, W]``, ``[N]`` in
    float64 (chapter 6), computed as scikit-image's ``structural_similarity`` computes it: a
    uniform window of 7x7 pixels, ``K1 = 0.01``, ``K2 = 0.03``, sample covariances, and the
    mean over the windows that lie inside the image."""
    if a.shape != b.shape or a.dim() != 3 or min(a.shape[1:]) < SSIM_WINDOW:
        raise ValueError(
            f"ssim compares images [N, H, W] of at least {SSIM_WINDOW} pixels a "
            f"side, got {tuple(a.shape)} and {tuple(b.shape)}."
        )
    x = a.detach().double()[:, None]
    y = b.detach().to(a.device).double()[:, None]

    def mean(z: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(z, SSIM_WINDOW, stride=1)

    unbiased = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)
    mx, my = mean(x), mean(y)
    vx, vy = unbiased * (mean(x * x) - mx * mx), unbiased * (mean(y * y) - my * my)
    vxy = unbiased * (mean(x * y) - mx * my)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return index.flatten(1).mean(1)


def _scaled(maps: torch.Tensor) -> torch.Tensor:
    """``|maps|`` per pixel, each map divided by its largest value: in ``[0, 1]`` for SSIM."""
    magnitude = per_pixel(maps).abs().double()
    top = magnitude.flatten(1).amax(1).clamp_min(torch.finfo(torch.float64).tiny)
    return magnitude / top.view(-1, *[1] * (magnitude.dim() - 1))


#: The similarity measures of :meth:`Randomization.similarity`, as Adebayo et al. (2018) use
#: them: Spearman's rank correlation of the maps' magnitudes and of the signed maps, and the
#: SSIM of the magnitudes scaled to [0, 1]. All compare one value per pixel (:func:`per_pixel`).
SIMILARITIES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "rank |map|": lambda a, b: rank_correlation(per_pixel(a).abs(), per_pixel(b).abs()),
    "rank map": lambda a, b: rank_correlation(per_pixel(a), per_pixel(b)),
    "ssim |map|": lambda a, b: ssim(_scaled(a), _scaled(b)),
}


# --- Chapter 6: the cascading model-parameter randomisation test ------------------------------


def randomizable_layers(model: nn.Module) -> list[str]:
    """The names of ``model``'s modules that can be drawn afresh (those with
    ``reset_parameters``: convolutions, linear and normalisation layers), in the order the
    model registers them, which for the course's networks and torchvision's is the order of
    the forward pass (the order Quantus's ``MPRT`` reverses for its "top_down" cascade)."""
    return [name for name, module in model.named_modules() if hasattr(module, "reset_parameters")]


def reinitialize(module: nn.Module, seed: int) -> None:
    """Draw ``module``'s parameters afresh, as PyTorch initialises a new layer (its
    ``reset_parameters``), from torch's CPU generator seeded with ``seed``: the same weights
    on any device, and torch's global random state as it was."""
    fresh = copy.deepcopy(module).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh.reset_parameters()
    module.load_state_dict(fresh.state_dict())  # copied onto the module's own device


def _stages(model: nn.Module, layers: Sequence[str] | None) -> list[tuple[str, list[str]]]:
    """Each stage of the cascade: its name and the layers it draws afresh, every randomisable
    layer from the last one not yet drawn down to the first layer of the named module."""
    every = randomizable_layers(model)
    if layers is None:
        return [(name, [name]) for name in reversed(every)]
    stages, drawn = [], len(every)
    for stage in layers:
        inside = [
            i for i, name in enumerate(every) if name == stage or name.startswith(f"{stage}.")
        ]
        if not inside:
            raise ValueError(
                f"layers: {stage!r} holds no randomisable layer of {type(model).__name__}; "
                f"choose among {every[:6]}{' ...' if len(every) > 6 else ''} or their parents."
            )
        if min(inside) >= drawn:
            raise ValueError(
                f"layers: {stage!r} lies above the stage before it; name the stages from the "
                "output down, as the cascade draws them."
            )
        stages.append((stage, every[min(inside) : drawn][::-1]))
        drawn = min(inside)
    return stages


@dataclass(frozen=True)
class Randomization:
    """The maps of the cascading randomisation test (chapter 6, Adebayo et al., 2018):
    ``maps[0]`` of the trained network, ``maps[s]`` after the layers of ``stages[1..s]`` were
    drawn afresh, ``[S + 1, N, ...]``; ``stages[0]`` is ``"trained"``."""

    stages: list[str]
    maps: torch.Tensor

    def similarity(self, measure: str = "rank |map|") -> torch.Tensor:
        """Each stage's maps against the trained network's, ``[S + 1, N]`` (the first row
        compares the trained maps with themselves): one of :data:`SIMILARITIES`."""
        if measure not in SIMILARITIES:
            raise ValueError(f"measure={measure!r}; choose one of {list(SIMILARITIES)}.")
        trained = self.maps[0]
        return torch.stack([SIMILARITIES[measure](trained, maps) for maps in self.maps])


def cascading_randomization(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor | None,
    explain: Attribute = gradient,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    reinitialize_layer: Callable[[nn.Module, int], None] = reinitialize,
    **options,
) -> Randomization:
    """The cascading model-parameter randomisation test of Adebayo et al. (2018), section
    3.1 (chapter 6): draw the layers afresh from the top (the output) down, one stage after
    another and keeping the earlier stages random, and compute the maps of ``explain`` (an
    attribution function of this module) for the same ``inputs`` and ``targets`` after each
    stage. A map that explains the network must change as its weights are lost; one that
    hardly changes shows the input, not the network.

    - ``layers``: the stages, top first: names of modules; a stage draws afresh every layer
      from the top down to the named module, inclusive (e.g. ``["fc", "conv2", "conv1"]`` for
      the course's CNN, or ``["classifier", "features.18", "features.12", ...]`` for
      MobileNetV2, whose blocks in between go with the next stage named); default: every
      layer of :func:`randomizable_layers`, from the last to the first, as Quantus's ``MPRT``.
    - Layer ``i`` of :func:`randomizable_layers` is drawn by ``reinitialize_layer(module,
      seed + i)``, so the random weights do not depend on how the stages group the layers.
    - ``options`` go to ``explain`` (e.g. ``samples=`` and ``attribute=`` for
      :func:`smoothgrad`). ``model`` itself is left as it was: the test randomises a copy.
    """
    order = _stages(model, layers)
    index = {name: i for i, name in enumerate(randomizable_layers(model))}
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    maps = [explain(model, inputs, targets, **options)]
    for _, names in order:
        for name in names:
            reinitialize_layer(modules[name], seed + index[name])
        maps.append(explain(randomized, inputs, targets, **options))
    return Randomization(["trained", *(stage for stage, _ in order)], torch.stack(maps))


# --- Chapter 6: faithfulness, the deletion and insertion curves ---------------------------------


def perturbation_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    maps: torch.Tensor,
    mode: str = "deletion",
    steps: int = 16,
    substrate: torch.Tensor | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """The deletion or insertion curve of Petsiuk, Das and Saenko (2018), chapter 6: the
    softmax probability of each input's target class as its pixels are changed, most
    important first by the map, ``[N, steps + 1]``.

    - ``"deletion"``: pixels go from the image to ``substrate`` (black, zeros, by default); a
      faithful map makes the probability fall fast (a small area under the curve).
    - ``"insertion"``: pixels go from ``substrate`` (the image blurred by a Gaussian of 5
      pixels, :func:`gaussian_blur`, by default) to the image; a faithful map makes it rise
      fast (a large area).

    ``inputs`` ``[N, C, H, W]``; ``maps`` ``[N, C, H, W]`` or ``[N, H, W]``, ranked by their
    value per pixel (:func:`per_pixel`; ties in the pixels' order). Step ``k`` changes
    ``round(k H W / steps)`` pixels, all colour channels of a pixel at once. At most
    ``batch_size`` images per forward pass (``None``: :func:`auto_batch_size`).
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode={mode!r}; choose 'deletion' or 'insertion'.")
    x = _floats_on(model, inputs, "perturbation_curve")
    if x.dim() != 4 or per_pixel(maps).shape != (len(x), *x.shape[2:]):
        raise ValueError(
            f"perturbation_curve needs images [N, C, H, W] and a map per image, "
            f"got {tuple(x.shape)} and {tuple(maps.shape)}."
        )
    if substrate is None:
        substrate = torch.zeros_like(x) if mode == "deletion" else gaussian_blur(x, 5.0)
    substrate = torch.broadcast_to(substrate.to(x), x.shape)
    scores = per_pixel(maps).detach().to(x.device).flatten(1)
    order = scores.argsort(dim=1, descending=True, stable=True)
    places = torch.arange(order.shape[1], device=x.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, places)  # 0 for the most important pixel
    counts = torch.tensor([round(k * rank.shape[1] / steps) for k in range(steps + 1)])
    changed = rank[None] < counts.to(x.device).view(-1, 1, 1)  # [steps + 1, N, H W]
    changed = changed.view(steps + 1, len(x), 1, *x.shape[2:])
    start, end = (x, substrate) if mode == "deletion" else (substrate, x)
    images = torch.where(changed, end, start).flatten(0, 1)
    chosen = _as_targets(targets, len(x), x.device)
    if chosen is None:
        raise ValueError("perturbation_curve needs targets: one class per image, or one for all.")
    with torch.no_grad():
        probabilities = _softmax_of(model, images, chosen.repeat(steps + 1), batch_size)
    return probabilities.view(steps + 1, len(x)).T.to(inputs.device)


def _softmax_of(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, batch_size: int | None
) -> torch.Tensor:
    size = batch_size or auto_batch_size(model, images[:1])
    parts = [model(chunk).softmax(dim=1) for chunk in images.split(size)]
    return torch.cat(parts).gather(1, targets[:, None]).squeeze(1)


def area_under_curve(curve: torch.Tensor) -> torch.Tensor:
    """The area under each curve ``[N, steps + 1]`` of :func:`perturbation_curve`, over the
    share of pixels changed from 0 to 1 (the trapezoid rule), ``[N]``."""
    steps = curve.shape[1] - 1
    return (curve[:, 1:] + curve[:, :-1]).sum(1) / (2 * steps)
