"""Tests of lib.models: the linear classifier is exactly eq. 1."""

from __future__ import annotations

import torch

from lib.models import LinearClassifier


def test_binary_output_is_a_x_plus_b(device: torch.device) -> None:
    model = LinearClassifier().to(device)
    x = torch.rand(5, 1, 28, 28, device=device)
    expected = x.flatten(1) @ model.linear.weight[0] + model.linear.bias[0]
    out = model(x)
    assert out.shape == (5,)
    assert torch.allclose(out, expected, atol=1e-5)


def test_several_outputs_keep_their_axis(device: torch.device) -> None:
    model = LinearClassifier(input_shape=(3, 4, 4), outputs=10).to(device)
    assert model(torch.rand(2, 3, 4, 4, device=device)).shape == (2, 10)
    assert model.weight_images().shape == (10, 3, 4, 4)


def test_weight_images_are_row_major_pixels() -> None:
    model = LinearClassifier()
    with torch.no_grad():
        model.linear.weight.copy_(torch.arange(784.0).reshape(1, 784))
    image = model.weight_images()
    assert image.shape == (1, 1, 28, 28)
    assert image[0, 0, 2, 5].item() == 2 * 28 + 5
    assert not image.requires_grad
