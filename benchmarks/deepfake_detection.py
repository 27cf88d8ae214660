"""Chapter 2's numbers outside the notebook: the GAN's cold training time and the accuracy of
linear detectors on log-FFT, DCT and pixel features, on the images as they are and randomly
shifted. Usage: python benchmarks/deepfake_detection.py [--epochs N] (XNN_DEVICE picks the
device; pin to two cores with ``taskset -c 0,1`` to time what a course machine sees)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time

import torch

from lib import data, frequency, generate, models, train

DETECTOR = train.TrainConfig(epochs=10, batch_size=256, lr=1e-3, optimizer="adam")


def features(images: torch.Tensor, kind: str) -> torch.Tensor:
    return images if kind == "pixels" else frequency.log_spectrum(images, kind)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=generate.GAN_CONFIG.epochs)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = dataclasses.replace(generate.GAN_CONFIG, epochs=args.epochs)
    patches = data.natural_patches(train=True)
    start = time.perf_counter()
    gan, history = train.train_cached(
        generate.GAN,
        patches,
        torch.zeros(len(patches)),
        config,
        name="bench-gan",
        step=generate.gan_step,
    )
    print(f"GAN: {args.epochs} epochs in {time.perf_counter() - start:.1f} s; last {history[-1]}")
    generator = gan.generator.eval()
    real_test = data.natural_patches(train=False)
    fakes = [
        generate.sample(generator, n, seed=s) for n, s in ((len(patches), 0), (len(real_test), 1))
    ]
    splits = {}
    for split, real, fake in (("train", patches, fakes[0]), ("test", real_test, fakes[1])):
        labels = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))])
        splits[split] = (torch.cat([real, fake]), labels)
    for shifted in (False, True):
        for kind in ("fft", "dct", "pixels"):
            start = time.perf_counter()
            x = {
                k: data.random_shift(v[0], seed=i) if shifted else v[0]
                for i, (k, v) in enumerate(splits.items())
            }
            stats = frequency.moments(features(x["train"], kind))
            z = {k: stats.standardise(features(v, kind)) for k, v in x.items()}
            model, _ = train.train_cached(
                functools.partial(models.LinearClassifier, (3, 32, 32)),
                z["train"],
                splits["train"][1],
                DETECTOR,
                name=f"bench-{kind}-{shifted}",
            )
            acc = train.accuracy(model, z["test"], splits["test"][1])
            took = time.perf_counter() - start
            print(f"{kind:6s} shifted={shifted}: test accuracy {acc:.4f} ({took:.1f} s)")


if __name__ == "__main__":
    main()
