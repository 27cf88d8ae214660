"""The models whose inner workings the chapters explain.

- chapter 1's linear classifier (:class:`LinearClassifier`);
- chapter 3's MNIST CNN (:class:`MnistCNN`), a course model shared with chapters 4 to 6 and
  the exercises (:func:`mnist_cnn`), and the same network trained on permuted labels for
  chapter 6's data randomisation test (:func:`mnist_cnn_permuted_labels`);
- AlexNet as its paper specifies it (:class:`AlexNet`), to count its neurons;
- a pretrained ImageNet classifier, resolved offline-first in tiers (:func:`load_imagenet_model`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from lib import data, train
from lib.device import get_device

if TYPE_CHECKING:
    import torchvision


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


class MnistCNN(nn.Module):
    """The small convolutional network of chapter 3: ten logits for an MNIST digit.

    Its first layer, ``conv1``, holds 32 kernels of 3x3 (the lecture's ``(3, 3, 1, 32)`` in
    Keras' order), the layer whose weights chapter 3 reads as images. A second convolution and
    two max-poolings follow, then one linear layer to the ten logits.
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)  # 28 -> 26
        self.conv2 = nn.Conv2d(32, channels, kernel_size=3)  # 13 -> 11
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(channels * 5 * 5, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc(x.flatten(start_dim=1))


#: How the course's MNIST CNN is trained: Adam, three passes over the training set. On 2 CPU
#: cores this takes about 35 s on the full MNIST (98.5% or more on its test set).
MNIST_CNN_CONFIG = train.TrainConfig(epochs=3, batch_size=128, lr=2e-3, optimizer="adam")


@train.course_model
def mnist_cnn() -> MnistCNN:
    """The trained MNIST CNN of chapter 3 (cross-entropy over the ten digits), in eval mode on
    :func:`lib.device.get_device`. A course model: trained once, then loaded from the course
    cache by chapters 3 to 5, the exercises and the grader."""
    images, labels = data.load_mnist(train=True)
    return _course_cnn(images, labels, MNIST_CNN_CONFIG, "mnist_cnn")


def _course_cnn(
    images: torch.Tensor, labels: torch.Tensor, config: train.TrainConfig, name: str
) -> MnistCNN:
    """A :class:`MnistCNN` trained with cross-entropy as the course model ``name``, in eval
    mode: the one recipe of chapter 3's CNN and chapter 6's CNN on permuted labels."""
    model, _ = train.train_cached(
        MnistCNN, images, labels, config, loss_fn=F.cross_entropy, name=name, course=True
    )
    return model.eval()


#: Chapter 6's data randomisation test (Adebayo et al., 2018, section 3.2): the course CNN's
#: architecture trained on the first ``PERMUTED_LABELS_DIGITS`` training digits with their
#: labels permuted, until it has learnt them by heart: after 80 epochs it gets 99.4% (full
#: MNIST) and 100% (the embedded digits) of its labels, in 21 to 23 s of CPU time on 1 thread.
PERMUTED_LABELS_DIGITS = 1000
PERMUTED_LABELS_CONFIG = train.TrainConfig(epochs=80, batch_size=32, lr=1e-3, optimizer="adam")


def permuted_label_digits(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first :data:`PERMUTED_LABELS_DIGITS` training digits and their labels in an order
    drawn with ``seed``: each digit carries another digit's label, so no label can be told
    from its image (chapter 6)."""
    images, labels = data.load_mnist(train=True)
    images, labels = images[:PERMUTED_LABELS_DIGITS], labels[:PERMUTED_LABELS_DIGITS]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return images, labels[order]


@train.course_model
def mnist_cnn_permuted_labels() -> MnistCNN:
    """Chapter 3's CNN trained on :func:`permuted_label_digits` (cross-entropy), in eval mode
    on :func:`lib.device.get_device`: the network of chapter 6's data randomisation test,
    which fits its training labels but has learnt nothing about digits. A course model."""
    images, shuffled = permuted_label_digits()
    return _course_cnn(images, shuffled, PERMUTED_LABELS_CONFIG, "mnist_cnn_permuted_labels")


class AlexNet(nn.Module):
    """AlexNet as Krizhevsky et al. (2012) specify it, "ImageNet classification with deep
    convolutional neural networks" (section 3.5 and figure 2).

    Five convolutions (96, 256, 384, 384 and 256 kernels) and three fully connected layers
    (4096, 4096, 1000). The paper trained on two GPUs, each holding half of the kernels;
    layers 2, 4 and 5 only see the kernel maps on their own GPU, which ``groups=2`` reproduces.
    Local response normalisation follows layers 1 and 2 with the paper's ``k=2, n=5,
    alpha=1e-4, beta=0.75``, overlapping max-pooling (3x3, stride 2) follows layers 1, 2 and
    5. With a 224x224 input, the first layer needs a padding of 2 to give the paper's 55x55.
    """

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        # torch divides alpha by n; the paper does not.
        lrn = {"size": 5, "alpha": 5 * 1e-4, "beta": 0.75, "k": 2.0}
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.LocalResponseNorm(**lrn),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(),
            nn.LocalResponseNorm(**lrn),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(start_dim=1))


def layer_sizes(
    model: nn.Module,
    input_shape: Sequence[int],
    kinds: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear),
) -> dict[str, int]:
    """Neurons per input in the output of every layer of ``kinds``, counted with forward hooks
    on one forward pass of an input of ``input_shape`` (without the batch axis)."""
    sizes: dict[str, int] = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _i, output, name=name: sizes.__setitem__(name, output[0].numel())
        )
        for name, module in model.named_modules()
        if isinstance(module, kinds)
    ]
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return sizes


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first convolution of ``model``: the layer that looks at the pixels."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer.")


def first_layer_facts(net: ImageNetModel | None) -> dict[str, str | int]:
    """What chapter 3 says of the first layer of ``net``: the network's ``name``, the
    ``count``, ``shape`` (width x height x colour channels) and ``stride`` of its kernels, and
    how many are ``zero`` (every weight exactly 0: pruned, the channel passes on a constant).
    Without a network, each says so."""
    if net is None:
        return dict.fromkeys(("name", "count", "shape", "stride", "zero"), "(no network loaded)")
    conv = first_conv(net.model)
    kernels = conv.weight.detach()
    return {
        "name": net.name,
        "count": len(kernels),
        "shape": "×".join(str(n) for n in kernels.shape[1:][::-1]),
        "stride": conv.stride[0],
        "zero": int((kernels.flatten(1).abs().amax(1) == 0).sum()),
    }


#: A state-dict file of torchvision's ``mobilenet_v2`` ImageNet weights, used when set.
IMAGENET_WEIGHTS_ENV = "XNN_IMAGENET_WEIGHTS"
#: The network the local tiers hold (the file named by the variable, the embedded default).
LOCAL_IMAGENET_MODEL = "mobilenet_v2"
_REPO = Path(__file__).resolve().parent.parent
#: The embedded default: Apache-2.0 MobileNetV2 weights; weights/README.md gives provenance.
EMBEDDED_IMAGENET_WEIGHTS = _REPO / "weights" / "mobilenet_v2_imagenet.pt"
_EMBEDDED_SHA256 = "34f243b186763b4b2e80727e30e308843ba03e5e648e36571706f5b673c302e3"


class _Normalize(nn.Module):
    """Pixels in ``[0, 1]`` minus a per-channel mean, over a per-channel std."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(-1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean.to(images.device)) / self.std.to(images.device)


@dataclass(frozen=True)
class ImageNetModel:
    """A pretrained ImageNet classifier with what it needs to be used.

    ``model`` is in eval mode on the device and expects normalised input; ``preprocess``
    (torchvision's transforms of the weights) turns any RGB image, ``[3, H, W]`` uint8 or
    float in ``[0, 1]``, into that input; :meth:`normalize` does the last step alone for images
    already cropped to 224x224, such as :func:`lib.data.photos`.
    """

    name: str
    model: nn.Module
    categories: list[str]
    preprocess: nn.Module
    tier: str

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels in ``[0, 1]`` (``[N, 3, H, W]``) minus the ImageNet mean, over its std."""
        return _Normalize(self.preprocess.mean, self.preprocess.std)(images)

    def on_pixels(self) -> nn.Module:
        """The network on pixels in ``[0, 1]`` (``[N, 3, H, W]``): :meth:`normalize`, then
        ``model``; for optimising an image in pixels (chapter 4's regularised class models).
        Its second module is ``model``, so its layers keep their names under ``"1."``."""
        return nn.Sequential(_Normalize(self.preprocess.mean, self.preprocess.std), self.model)

    @torch.no_grad()
    def classify(self, images: torch.Tensor, top: int = 3) -> list[list[tuple[str, float]]]:
        """The ``top`` classes and their softmax probabilities for pixels in ``[0, 1]``."""
        device = next(self.model.parameters()).device
        logits = self.model(self.normalize(images.to(device)))
        probabilities, indices = logits.softmax(dim=1).topk(top, dim=1)
        return [
            [(self.categories[i], p) for i, p in zip(row_i.tolist(), row_p.tolist(), strict=True)]
            for row_i, row_p in zip(indices, probabilities, strict=True)
        ]


def _shown(path: Path) -> str:
    home, text = str(Path.home()), str(path)
    return "~" + text[len(home) :] if text.startswith(home + os.sep) else os.path.relpath(path)


def _imagenet_state(
    name: str, weights: torchvision.models.WeightsEnum, download: bool | None
) -> tuple[dict | None, str, str]:
    """The tiers of :func:`load_imagenet_model`: ``(state dict, tier, where)``, or no state
    dict, ``"none"`` and why each tier was passed over."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True), "torch cache", cached
    if data._download_allowed(download):
        try:
            return weights.get_state_dict(progress=False), "download", cached
        except OSError as error:
            reasons = [f"download failed: {error}"]
    else:
        reasons = ["not in the torch cache, download off"]
    if name != LOCAL_IMAGENET_MODEL:
        return None, "none", ", ".join([*reasons, f"local files hold {LOCAL_IMAGENET_MODEL}"])
    configured = os.environ.get(IMAGENET_WEIGHTS_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"{IMAGENET_WEIGHTS_ENV}={configured!r} is not a file. Point it at a state dict "
                f"of torchvision's {LOCAL_IMAGENET_MODEL}, or unset it."
            )
        return torch.load(path, map_location="cpu", weights_only=True), "variable", path
    path = EMBEDDED_IMAGENET_WEIGHTS
    if path.is_file():
        if data.file_digest(path, "sha256") != _EMBEDDED_SHA256:
            raise RuntimeError(
                f"{path} is corrupt (its sha256 differs from weights/README.md). Restore it "
                "with `git checkout -- weights/`."
            )
        return torch.load(path, map_location="cpu", weights_only=True), "embedded", path
    return None, "none", ", ".join([*reasons, f"{IMAGENET_WEIGHTS_ENV} unset, no embedded file"])


_TIER_TEXT = {
    "torch cache": "torchvision's weights from the torch cache",
    "download": "torchvision's weights, downloaded into the torch cache",
    "variable": f"weights from ${IMAGENET_WEIGHTS_ENV}",
    "embedded": "the embedded default weights",
}


def load_imagenet_model(name: str = LOCAL_IMAGENET_MODEL, download: bool | None = None):
    """A pretrained ImageNet classifier from torchvision's model zoo, offline-first.

    The tiers, in order (one printed line says which was used):

    1. torchvision's weights in the local torch cache (``torch.hub.get_dir()``), downloaded
       there only when ``download`` or ``$XNN_DOWNLOAD=1`` allows it;
    2. for ``mobilenet_v2``: the state-dict file named by ``$XNN_IMAGENET_WEIGHTS``;
    3. for ``mobilenet_v2``: the embedded default in ``weights/`` (Apache-2.0, see its README).

    Returns an :class:`ImageNetModel`, or ``None`` (with one line saying why) when no tier has
    weights, so that a chapter can show the note and go on. Class names and preprocessing come
    from torchvision's weight metadata, which needs no network.
    """
    # torchvision (and the torch._dynamo its ops import) takes seconds to import: only the
    # chapters on ImageNet networks pay for it, not every kernel that imports lib.models.
    import torchvision

    try:
        options = torchvision.models.get_model_weights(name)
    except ValueError as error:
        raise ValueError(
            f"name={name!r} is not a torchvision classification model; try "
            f"{LOCAL_IMAGENET_MODEL!r} or 'alexnet'."
        ) from error
    # The first ImageNet weights (resize 256, crop 224): the preprocessing the local file
    # expects and lib.data.photos crops for, where later versions resize to 232.
    weights = getattr(options, "IMAGENET1K_V1", options.DEFAULT)
    state, tier, where = _imagenet_state(name, weights, download)
    if state is None:
        print(f"ImageNet {name}: no weights ({where})")
        return None
    model = torchvision.models.get_model(name, weights=None)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise RuntimeError(
            f"{where} does not hold torchvision {name} weights ({str(error)[:200]}). Replace it."
        ) from error
    print(f"ImageNet {name}: {_TIER_TEXT[tier]} ({_shown(Path(where))})")
    return ImageNetModel(
        name=name,
        model=model.to(get_device()).eval(),
        categories=list(weights.meta["categories"]),
        preprocess=weights.transforms(),
        tier=tier,
    )
