"""Time to score generated images: Inception-v3 features (FID/KID/IS/PR) and the offline
classifier, per image, with the time for 10k samples extrapolated from the measured rate.

    python benchmarks/score_throughput.py [--num 500] [--batch 50]

Inception runs with random weights in pytorch-fid's layout (the same network and cost as the
real weights); the classifier with its committed weights. Images are 28x28x1 in [0, 1] resized
to 299x299 ('tf1' preprocessing), as for Fashion-MNIST.
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np


def _time(fn, images, repeats: int = 1) -> float:
    fn(images[:min(len(images), 64)])  # compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(images)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num", type=int, default=500, help="images timed")
    p.add_argument("--batch", type=int, default=50, help="Inception batch")
    args = p.parse_args()

    from wgan_jax.evaluators import quality
    from wgan_jax.quality import classifier, convert_inception, inception
    images = np.random.default_rng(0).uniform(size=(args.num, 28, 28, 1)).astype(np.float32)
    flat = convert_inception.torch_to_flat(convert_inception.random_fid_state_dict(0))
    params = inception.unflatten_variables({k: jax.numpy.asarray(v) for k, v in flat.items()})
    quality.INCEPTION_BATCH = args.batch
    features = quality.InceptionFeatures(params, (0.0, 1.0), "tf1")
    t_inc = _time(features, images)
    cparams = classifier.load_classifier("fashion_mnist")
    t_cls = _time(lambda x: classifier.extract(cparams, x), images, repeats=3)
    print(f"backend {jax.default_backend()}, {jax.device_count()} device(s), "
          f"{args.num} images")
    for name, t in ((f"inception (tf1, batch {args.batch})", t_inc),
                    ("fashion_mnist classifier", t_cls)):
        print(f"{name:32s} {args.num / t:9.1f} images/s   10k samples: {1e4 * t / args.num:8.1f} s")


if __name__ == "__main__":
    main()
