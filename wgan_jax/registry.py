"""Every dataset and architecture the project knows, and the facts the other modules read.

Adding a dataset or an architecture is an entry here plus its own module: config validation,
the data pipelines, the model builder, the evaluators and the benchmarks all read these tables.
Only numpy is imported, so any module (and a machine without TensorFlow) can use them.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

_SQRT_HALF = 1.0 / math.sqrt(2.0)
# Debian's dataset-fashion-mnist package: the four original idx files (gzipped).
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@dataclasses.dataclass(frozen=True)
class Mixture:
    """A 2-D Gaussian mixture as gan_toy.py draws it: (centre + std * N(0, I)) / divisor."""

    centers: tuple[tuple[float, float], ...]
    std: float
    divisor: float

    def mode_centers(self) -> np.ndarray:
        """Component centres after the final division, float64 of shape (K, 2)."""
        return np.asarray(self.centers, np.float64) / self.divisor

    def mode_std(self) -> float:
        """Per-coordinate std of each component after the final division."""
        return self.std / self.divisor


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset: its example shape, value range, the architectures that fit it and its source.

    Toy sets (`tfds_name` None) are drawn on the device; `mixture` is set for the Gaussian
    mixtures (the sets with modes to count). Image sets come through TFDS; `crop` is the central
    square cut before resizing, `cache` whether decoded images fit in memory, `local_source` a
    directory of original files a distribution package installs, to prepare the set offline.
    """

    name: str
    shape: tuple[int, ...]
    archs: tuple[str, ...]
    value_range: tuple[float, float] | None = None
    tfds_name: str | None = None
    mixture: Mixture | None = None
    crop: tuple[int, int] | None = None
    cache: bool = True
    local_source: str | None = None
    classifier: bool = False  # the project's classifier has committed weights for it
    num_classes: int = 0  # labelled sets: classes of TFDS's 'label' feature; 0: no labels
    pad: int = 0  # zero (black) pixels added on each side after scaling to value_range

    @property
    def is_toy(self) -> bool:
        return self.tfds_name is None


@dataclasses.dataclass(frozen=True)
class Arch:
    """A generator/critic pair: what it consumes and produces."""

    name: str
    data_shape: tuple[int, ...]
    output_range: tuple[float, float] | None  # None: unbounded (the toy MLP)
    latent_dim: int
    description: str
    # Critic widths, input side first: conv channels of the DCGANs (their generators run through
    # the same widths in reverse), the hidden layer of 'mlp', the ResNets' base width (DIM);
    # the toy MLP's come from the config.
    widths: tuple[int, ...] = ()
    kernel: int = 5  # the DCGANs' conv kernel size (the ResNets': 3)
    # Image channel counts the arch also builds for (`build_models(channels=...)`), besides
    # `data_shape`'s.
    other_channels: tuple[int, ...] = ()


_8G = Mixture(tuple((2.0 * x, 2.0 * y) for x, y in
                    [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0),
                     (_SQRT_HALF, _SQRT_HALF), (_SQRT_HALF, -_SQRT_HALF),
                     (-_SQRT_HALF, _SQRT_HALF), (-_SQRT_HALF, -_SQRT_HALF)]),
              std=0.02, divisor=1.414)
_25G = Mixture(tuple((2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)),
               std=0.05, divisor=2.828)
SWISSROLL_NOISE = 0.25
SWISSROLL_DIVISOR = 7.5

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("8gaussians", (2,), ("toy",), mixture=_8G),
    Dataset("25gaussians", (2,), ("toy",), mixture=_25G),
    Dataset("swissroll", (2,), ("toy",)),
    # gan_mnist.py's generator ends in a sigmoid: pixels in [0, 1].
    Dataset("mnist", (28, 28, 1), ("mnist", "mlp"), (0.0, 1.0), "mnist", num_classes=10),
    Dataset("fashion_mnist", (28, 28, 1), ("mnist", "mlp"), (0.0, 1.0), "fashion_mnist",
            local_source=DEBIAN_FASHION_MNIST, classifier=True, num_classes=10),
    # The 32x32 ResNet on Fashion-MNIST: 28x28 padded with 2 black pixels a side, in [-1, 1].
    Dataset("fashion_mnist32", (32, 32, 1), ("resnet32",), (-1.0, 1.0), "fashion_mnist",
            local_source=DEBIAN_FASHION_MNIST, classifier=True, num_classes=10, pad=2),
    Dataset("cifar10", (32, 32, 3), ("cifar", "resnet32"), (-1.0, 1.0), "cifar10",
            num_classes=10),
    # CelebA images are 218x178 (HxW); the central 178x178 square is resized to 64x64, and
    # ~20 GB decoded do not fit in memory.
    Dataset("celeba64", (64, 64, 3), ("celeba64", "dcgan64", "resnet64"), (-1.0, 1.0), "celeb_a",
            crop=(178, 178), cache=False),
)}

ARCHS: dict[str, Arch] = {a.name: a for a in (
    Arch("toy", (2,), None, 2, "gan_toy.py's ReLU MLPs"),
    Arch("mnist", (28, 28, 1), (0.0, 1.0), 128, "gan_mnist.py's DCGAN (5x5 kernels, sigmoid)",
         (64, 128, 256)),
    Arch("mlp", (28, 28, 1), (0.0, 1.0), 10,
         "the seed WGAN's MLPs for 28x28 images (critic 784-128-1, generator with sigmoid)",
         (128,)),
    Arch("cifar", (32, 32, 3), (-1.0, 1.0), 128, "gan_cifar.py's DCGAN (5x5 kernels, tanh)",
         (128, 256, 512)),
    Arch("celeba64", (64, 64, 3), (-1.0, 1.0), 128, "gan_64x64.py's DCGAN (5x5 kernels)",
         (64, 128, 256, 512)),
    Arch("dcgan64", (64, 64, 3), (-1.0, 1.0), 100,
         "the WGAN paper's PyTorch DCGAN (4x4 kernels, no biases)", (64, 128, 256, 512), 4),
    Arch("resnet32", (32, 32, 3), (-1.0, 1.0), 128,
         "gan_cifar_resnet.py's ResNet (3x3 convs, residual blocks, DIM 128)", (128,), 3, (1,)),
    Arch("resnet64", (64, 64, 3), (-1.0, 1.0), 128,
         "gan_64x64.py's GoodGenerator/GoodDiscriminator (ResNet, dim 64)", (64,), 3, (1,)),
)}

TOY_DATASETS = tuple(n for n, d in DATASETS.items() if d.is_toy)
MIXTURES = tuple(n for n, d in DATASETS.items() if d.mixture is not None)
IMAGE_DATASETS = tuple(n for n, d in DATASETS.items() if not d.is_toy)


def dataset(name: str) -> Dataset:
    """The registry entry of dataset `name`; ValueError listing the known ones otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None


def arch(name: str) -> Arch:
    """The registry entry of architecture `name`; ValueError listing the known ones otherwise."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown model arch {name!r}; choose one of {sorted(ARCHS)}") from None


def mixture(name: str) -> Mixture:
    """The Gaussian mixture of toy dataset `name`; ValueError if it has no modes."""
    m = dataset(name).mixture
    if m is None:
        raise ValueError(f"toy dataset {name!r} is not a Gaussian mixture and has no modes; "
                         f"choose one of {MIXTURES}")
    return m
