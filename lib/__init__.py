"""Explaining Neural Networks: the small library behind the course book.

One module per concept of the lecture:

- :mod:`lib.device` -- where the computation runs (CPU, CUDA, MPS);
- :mod:`lib.data` -- MNIST, resolved offline-first in tiers;
- :mod:`lib.models` -- the models the chapters interpret (chapter 3's MNIST CNN, AlexNet, a
  pretrained ImageNet classifier resolved offline-first);
- :mod:`lib.train` -- the loss of eq. 2, the one training loop (steps of one or two
  players), its on-disk model cache and the course models;
- :mod:`lib.frequency` -- log-scaled FFT and DCT spectra and their streaming standardisation
  (chapter 2);
- :mod:`lib.generate` -- chapter 2's GAN, whose trained generator is a course model;
- :mod:`lib.optimize` -- input optimisation: gradient ascent on the input (chapter 3, eq. 3);
- :mod:`lib.plot` -- one helper per kind of picture.
"""
