"""Trains the offline metrics' classifier (`wgan_jax.quality.classifier`) and writes its weights.

Reads the original idx files (the train split to train, t10k to report the test accuracy), trains
with Adam on cross-entropy, seeded, and writes the float32 weights with the test accuracy, the
per-epoch train loss and the command in the file's metadata:

    python -m wgan_jax.quality.train_classifier --dataset fashion_mnist \
        --source /usr/share/datasets/fashion-mnist \
        --out wgan_jax/quality/weights/fashion_mnist_classifier.npz
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wgan_jax.data.local_tfds import DEBIAN_FASHION_MNIST, LOCAL_DATASETS
from wgan_jax.quality import classifier


def _loss(params, images, labels):
    _, logits = classifier.Classifier().apply(params, images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def make_train_step(optimizer: optax.GradientTransformation):
    """One jitted Adam step on a batch; returns (params, opt_state, loss)."""

    @jax.jit
    def step(params, opt_state, images, labels):
        loss, grads = jax.value_and_grad(_loss)(params, images, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def accuracy(params: dict, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of `images` whose arg-max logit is the label."""
    _, logits = classifier.extract(params, images)
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def train(source: str, epochs: int, batch_size: int, learning_rate: float, seed: int,
          log=print) -> tuple[dict, dict]:
    """Trains on the train split; returns (variables, summary with the test accuracy)."""
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise ValueError(f"epochs and batch_size must be positive and learning_rate > 0, got "
                         f"{epochs}, {batch_size}, {learning_rate}")
    start = time.perf_counter()
    train_x, train_y = classifier.load_split(source, "train")
    test_x, test_y = classifier.load_split(source, "test")
    params = classifier.init_params(jax.random.key(seed))
    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(params)
    step = make_train_step(optimizer)
    rng = np.random.default_rng(seed)
    steps = len(train_x) // batch_size  # the incomplete last batch is dropped: one program
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(train_x))
        total = jnp.zeros(())
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            params, opt_state, loss = step(params, opt_state, train_x[idx], train_y[idx])
            total = total + loss
        losses.append(float(total) / steps)
        log(f"epoch {epoch + 1}/{epochs}: train loss {losses[-1]:.4f} "
            f"({time.perf_counter() - start:.0f} s)")
    test_accuracy = accuracy(params, test_x, test_y)
    summary = {"test_accuracy": test_accuracy, "test_size": len(test_x),
               "train_loss_per_epoch": losses, "epochs": epochs, "batch_size": batch_size,
               "learning_rate": learning_rate, "seed": seed,
               "wall_time_s": round(time.perf_counter() - start, 1),
               "jax_version": jax.__version__}
    return params, summary


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=LOCAL_DATASETS, default="fashion_mnist")
    parser.add_argument("--source", default=None,
                        help="folder of the four idx files (default for fashion_mnist: "
                             f"{DEBIAN_FASHION_MNIST})")
    parser.add_argument("--out", default=None,
                        help="weights file (default: the package's weights/<dataset>_classifier"
                             ".npz)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    source = args.source
    if source is None:
        if args.dataset != "fashion_mnist":
            parser.error(f"--source is required for --dataset {args.dataset}")
        source = DEBIAN_FASHION_MNIST
    out = args.out or str(classifier.weights_path(args.dataset))

    params, summary = train(source, args.epochs, args.batch_size, args.learning_rate, args.seed)
    print(f"test accuracy ({args.dataset}, t10k, {summary['test_size']} images): "
          f"{summary['test_accuracy']:.4f}")
    metadata = {"dataset": args.dataset, **summary,
                "command": shlex.join(["python", "-m", "wgan_jax.quality.train_classifier",
                                       *argv])}
    classifier.save_weights(out, params, metadata)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
