"""Attribution: which input pixels an output neuron owes its value to (chapters 4 and 5).

The image-specific class saliency map (chapter 4) after Simonyan, Vedaldi and Zisserman (2013),
"Deep inside convolutional networks: visualising image classification models and saliency
maps": the magnitude of the class score's gradient with respect to the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


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
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else inputs.device
    if not inputs.is_floating_point():
        raise ValueError(f"inputs have dtype {inputs.dtype}; convert the images to floats.")
    images = inputs.detach().to(device).requires_grad_(True)
    chosen = torch.as_tensor(targets, dtype=torch.long, device=device).reshape(-1)
    if len(chosen) == 1:
        chosen = chosen.expand(len(images))
    if len(chosen) != len(images):
        raise ValueError(
            f"targets has {len(chosen)} entries for {len(images)} inputs; give one each."
        )
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
