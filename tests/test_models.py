"""Tests of lib.models: the linear classifier is exactly eq. 1; chapter 3's MNIST CNN is a
course model; AlexNet has the paper's neurons; the ImageNet model resolves in tiers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from lib import data, models, train
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


def test_mnist_cnn_has_32_first_layer_kernels_of_3x3_and_ten_logits(device) -> None:
    model = models.MnistCNN().to(device)
    assert model.conv1.weight.shape == (32, 1, 3, 3)
    assert models.first_conv(model) is model.conv1
    assert model(torch.rand(4, 1, 28, 28, device=device)).shape == (4, 10)


def _small_mnist(train: bool = True, download=None):
    """256 digits whose class is the row of their brightest stripe: learnable in one epoch."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(256) % 10
    images = 0.1 * torch.rand(256, 1, 28, 28, generator=generator)
    for i, label in enumerate(labels):
        images[i, 0, 2 + 2 * label : 4 + 2 * label] = 1.0
    return images, labels


def test_mnist_cnn_is_a_course_model_trained_once(tmp_path, monkeypatch, device, capsys) -> None:
    monkeypatch.setenv(train.COURSE_CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(data, "load_mnist", _small_mnist)
    assert "lib.models.mnist_cnn" in train.course_models()
    model = models.mnist_cnn()
    assert isinstance(model, models.MnistCNN) and not model.training
    assert next(model.parameters()).device.type == device.type
    assert len(list(tmp_path.glob("mnist_cnn-*.pt"))) == 1
    assert "trained for" in capsys.readouterr().out
    images, labels = _small_mnist()
    assert train.accuracy(model, images, labels) > 0.9  # cross-entropy over ten classes

    def no_training(*args, **kwargs):
        raise AssertionError("the course CNN was trained again")

    monkeypatch.setattr(train, "fit", no_training)
    again = models.mnist_cnn()
    assert "loaded the trained model" in capsys.readouterr().out
    assert torch.equal(again.conv1.weight, model.conv1.weight) and not again.training


def test_permuted_labels_are_the_digits_labels_shuffled(monkeypatch) -> None:
    monkeypatch.setattr(data, "load_mnist", _small_mnist)
    monkeypatch.setattr(models, "PERMUTED_LABELS_DIGITS", 40)
    images, shuffled = models.permuted_label_digits()
    small, labels = _small_mnist()
    assert torch.equal(images, small[:40])
    assert sorted(shuffled.tolist()) == sorted(labels[:40].tolist())
    assert (shuffled != labels[:40]).float().mean() > 0.5  # most digits carry another's label
    assert torch.equal(models.permuted_label_digits()[1], shuffled)  # seeded


def test_the_permuted_labels_cnn_is_a_course_model(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(train.COURSE_CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(data, "load_mnist", _small_mnist)
    config = dataclasses.replace(models.PERMUTED_LABELS_CONFIG, epochs=2)
    monkeypatch.setattr(models, "PERMUTED_LABELS_CONFIG", config)
    assert "lib.models.mnist_cnn_permuted_labels" in train.course_models()
    model = models.mnist_cnn_permuted_labels()
    assert isinstance(model, models.MnistCNN) and not model.training
    assert len(list(tmp_path.glob("mnist_cnn_permuted_labels-*.pt"))) == 1
    assert "trained for 2 epochs" in capsys.readouterr().out


def test_alexnet_has_the_papers_neurons() -> None:
    with torch.device("meta"):  # shapes only: no 61 million weights to initialise
        model = models.AlexNet()
    model.to_empty(device="cpu")
    sizes = models.layer_sizes(model, (3, 224, 224))
    expected = [290_400, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]
    assert list(sizes.values()) == expected
    assert models.first_conv(model).weight.shape == (96, 3, 11, 11)
    # The two GPUs of the paper: layers 2, 4 and 5 see half of the kernel maps below them.
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [conv.groups for conv in convs] == [1, 2, 1, 2, 2]


def test_layer_sizes_removes_its_hooks() -> None:
    model = LinearClassifier(input_shape=(1, 2, 2), outputs=3)
    assert models.layer_sizes(model, (1, 2, 2)) == {"linear": 3}
    assert not model.linear._forward_hooks


# --- The ImageNet model's tiers ----------------------------------------------------------


@pytest.fixture
def no_imagenet(tmp_path, monkeypatch) -> Path:
    """No torch cache, no variable, no download: each test adds the tier it checks."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(models.IMAGENET_WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(data.DOWNLOAD_ENV, raising=False)
    return tmp_path


def _random_mobilenet(path: Path) -> dict:
    torch.manual_seed(0)
    state = torchvision.models.mobilenet_v2(weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def _same_weights(net: models.ImageNetModel, state: dict) -> bool:
    return all(torch.equal(v.cpu(), state[k]) for k, v in net.model.state_dict().items())


def test_torchvision_weights_in_the_torch_cache_come_first(no_imagenet, monkeypatch, capsys):
    cached = no_imagenet / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    state = _random_mobilenet(cached)
    monkeypatch.setenv(models.IMAGENET_WEIGHTS_ENV, str(models.EMBEDDED_IMAGENET_WEIGHTS))
    net = models.load_imagenet_model()
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "from the torch cache" in line, line
    assert net.tier == "torch cache" and _same_weights(net, state)
    assert not net.model.training and len(net.categories) == 1000
    assert net.categories[281] == "tabby" and net.preprocess.resize_size == [256]


def test_the_variable_names_a_state_dict(no_imagenet, monkeypatch, capsys) -> None:
    path = no_imagenet / "mine.pt"
    state = _random_mobilenet(path)
    monkeypatch.setenv(models.IMAGENET_WEIGHTS_ENV, str(path))
    net = models.load_imagenet_model()
    assert net.tier == "variable" and _same_weights(net, state)
    assert models.IMAGENET_WEIGHTS_ENV in capsys.readouterr().out
    monkeypatch.setenv(models.IMAGENET_WEIGHTS_ENV, str(no_imagenet / "missing.pt"))
    with pytest.raises(FileNotFoundError, match="XNN_IMAGENET_WEIGHTS='.*missing.pt' is not"):
        models.load_imagenet_model()


def test_a_file_of_other_weights_is_named(no_imagenet, monkeypatch) -> None:
    path = no_imagenet / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    monkeypatch.setenv(models.IMAGENET_WEIGHTS_ENV, str(path))
    with pytest.raises(RuntimeError, match="other.pt does not hold torchvision mobilenet_v2"):
        models.load_imagenet_model()


def test_the_embedded_default_is_a_real_imagenet_classifier(no_imagenet, capsys) -> None:
    net = models.load_imagenet_model()
    assert "the embedded default weights" in capsys.readouterr().out
    assert net.tier == "embedded"
    predictions = net.classify(data.photos(["coffee", "chelsea"]), top=5)
    assert predictions[0][0][0] == "espresso" and predictions[0][0][1] > 0.5
    assert "tiger cat" in [name for name, _ in predictions[1]]


def test_a_corrupt_embedded_file_is_refused(no_imagenet, monkeypatch) -> None:
    monkeypatch.setattr(models, "_EMBEDDED_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="corrupt .*git checkout -- weights/"):
        models.load_imagenet_model()


def test_no_weights_anywhere_says_so_in_one_line(no_imagenet, monkeypatch, capsys) -> None:
    monkeypatch.setattr(models, "EMBEDDED_IMAGENET_WEIGHTS", no_imagenet / "none.pt")
    assert models.load_imagenet_model() is None
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "no weights" in line and len(line) < 120, line
    # AlexNet's weights come from torchvision alone; the local files hold MobileNetV2.
    assert models.load_imagenet_model("alexnet") is None
    assert "local files hold mobilenet_v2" in capsys.readouterr().out


def test_a_failed_download_is_reported(no_imagenet, monkeypatch, capsys) -> None:
    def offline(self, *args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    monkeypatch.setattr(models, "EMBEDDED_IMAGENET_WEIGHTS", no_imagenet / "none.pt")
    assert models.load_imagenet_model(download=True) is None
    assert "download failed: no network" in capsys.readouterr().out
    with pytest.raises(ValueError, match="name='resnet9000' is not a torchvision"):
        models.load_imagenet_model("resnet9000")


def test_alexnet_weights_in_the_torch_cache_are_loaded(no_imagenet, capsys) -> None:
    # torchvision's AlexNet is the single-GPU variant: 64 first-layer kernels, not 96.
    cached = no_imagenet / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    cached.parent.mkdir(parents=True)
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save(state, cached)
    net = models.load_imagenet_model("alexnet")
    assert "ImageNet alexnet: torchvision's weights from the torch cache" in capsys.readouterr().out
    assert net.name == "alexnet" and net.tier == "torch cache" and _same_weights(net, state)
    assert models.first_conv(net.model).weight.shape == (64, 3, 11, 11)


def test_the_network_on_pixels_normalises_first(no_imagenet, monkeypatch) -> None:
    path = no_imagenet / "mine.pt"
    _random_mobilenet(path)
    monkeypatch.setenv(models.IMAGENET_WEIGHTS_ENV, str(path))
    net = models.load_imagenet_model()
    pixels = torch.rand(2, 3, 64, 64)
    on_pixels = net.on_pixels()
    assert on_pixels[1] is net.model
    with torch.no_grad():
        assert torch.allclose(on_pixels(pixels), net.model(net.normalize(pixels)))
    mean = torch.tensor(net.preprocess.mean).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    assert torch.allclose(net.normalize(mean), torch.zeros(1, 3, 4, 4), atol=1e-6)


def test_first_layer_facts_count_the_pruned_kernels(no_imagenet) -> None:
    net = models.load_imagenet_model()  # the embedded MobileNetV2
    facts = models.first_layer_facts(net)
    assert facts == {"name": "mobilenet_v2", "count": 32, "shape": "3×3×3", "stride": 2, "zero": 8}
    with torch.no_grad():
        models.first_conv(net.model).weight[:3] = 0.0
    assert models.first_layer_facts(net)["zero"] == 11
    assert set(models.first_layer_facts(None).values()) == {"(no network loaded)"}
