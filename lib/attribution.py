"""Attribution: which input pixels an output neuron owes its value to (chapters 4 and 5).

- The image-specific class saliency map (chapter 4) after Simonyan, Vedaldi and Zisserman
  (2013), "Deep inside convolutional networks: visualising image classification models and
  saliency maps": the magnitude of the class score's gradient with respect to the image.
- Integrated gradients (chapter 5, eq. 5) after Sundararajan, Taly and Yan (2017), "Axiomatic
  attribution for deep networks", computed as an exact quadrature of the path integral,
  vectorised over images and steps, on any device.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
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
