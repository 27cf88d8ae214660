"""The models whose inner workings the chapters explain."""

from __future__ import annotations

import math

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """The linear classifier ``o = A x + b`` of chapter 1, eq. 1.

    ``x`` is an image flattened to a vector. With ``outputs=1`` the single output ``o`` is
    the logit of a binary classifier, ``sigma(o)`` the probability of the positive class.
    """

    def __init__(self, input_shape: tuple[int, ...] = (1, 28, 28), outputs: int = 1) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.linear = nn.Linear(math.prod(self.input_shape), outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.linear(x.flatten(start_dim=1))
        return o.squeeze(-1) if o.shape[-1] == 1 else o

    def weight_images(self) -> torch.Tensor:
        """The rows of ``A`` in the shape of the input: one image per output (chapter 1,
        "interpretation by examination")."""
        return self.linear.weight.detach().reshape(-1, *self.input_shape)
