"""Score a run's checkpoint, or a folder of images, with the image-quality evaluators.

    python -m wgan_jax.score --workdir runs/my_run [--step 5000] [--evals classifier,inception]
    python -m wgan_jax.score --images DIR --dataset fashion_mnist [--evals classifier]

The run's own config.json decides the model, the dataset and the evaluators' settings
(`eval.*`); `--inception_weights`, `--num_samples` and `--data_dir` override them. Prints one
JSON object of metrics (the same names the training loop writes).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

QUALITY_EVALS = ("classifier", "inception")


def _config(args):
    import ml_collections

    from wgan_jax import config as config_lib
    from wgan_jax.method import config_with
    if args.workdir:
        path = os.path.join(args.workdir, "config.json")
        if not os.path.isfile(path):
            raise config_lib.ConfigError(f"{path} not found: --workdir must be a run directory "
                                         "written by run.py")
        with open(path) as f:
            c = config_with(ml_collections.ConfigDict(json.load(f)))
    else:
        c = config_with({"dataset": args.dataset,
                         "model.arch": _arch_for(args.dataset)})
    c.evals = tuple(args.evals.split(","))
    inc, cls = c.eval.inception, c.eval.classifier
    if args.inception_weights:
        inc.weights = args.inception_weights
    if args.num_samples:
        inc.num_samples = cls.num_samples = args.num_samples
    if args.reference_num_samples:
        c.eval.reference_num_samples = args.reference_num_samples
    inc.kid_subset_size = min(inc.kid_subset_size, inc.num_samples,
                              c.eval.reference_num_samples)
    inc.is_num_splits = min(inc.is_num_splits, inc.num_samples)
    cls.is_num_splits = min(cls.is_num_splits, cls.num_samples)
    if args.stats_dir:
        c.eval.stats_dir = args.stats_dir
    if args.data_dir:
        c.data_dir = args.data_dir
    return c


def _arch_for(dataset: str) -> str:
    from wgan_jax import registry
    return registry.dataset(dataset).archs[0]


def read_images(folder: str, value_range) -> np.ndarray:
    """PNG/JPEG files of `folder` as float32 NHWC in `value_range` (sorted by name)."""
    from PIL import Image
    files = sorted(f for ext in ("png", "jpg", "jpeg")
                   for f in glob.glob(os.path.join(folder, f"*.{ext}")))
    if not files:
        raise FileNotFoundError(f"no .png/.jpg images in {folder}")
    arrays = []
    for f in files:
        try:
            arrays.append(np.asarray(Image.open(f)))
        except OSError as e:  # PIL.UnidentifiedImageError, truncated files
            raise ValueError(f"{f} is not a readable image ({type(e).__name__}); remove it or "
                             "pass a folder of PNG/JPEG files") from e
    shapes = sorted({a.shape for a in arrays})
    if len(shapes) > 1:
        raise ValueError(f"images in {folder} differ in shape ({shapes[:3]}); pass images of "
                         "one size")
    x = np.stack([a if a.ndim == 3 else a[..., None] for a in arrays]).astype(np.float32)
    lo, hi = value_range
    return x / 255.0 * (hi - lo) + lo


def score(args) -> dict[str, float]:
    """The metrics `args` asks for (see the module docstring)."""
    import jax

    from wgan_jax import checkpoint, evaluators
    from wgan_jax.method import Method
    config = _config(args)
    method = Method.from_config(config)
    evals = evaluators.build(config, method)
    if args.images:
        fake = read_images(args.images, method.arch.output_range)
        if fake.shape[1:] != method.data.shape:
            raise ValueError(f"images in {args.images} have shape {fake.shape[1:]}, but "
                             f"{method.dataset!r} images are {method.data.shape}")
        out = {}
        for ev in evals:
            out.update(ev.score(fake) if getattr(ev, "features", True) is not None else {})
        return out
    mngr = checkpoint.manager(os.path.join(args.workdir, "checkpoints"))
    state, step = checkpoint.restore_latest(mngr, method.init_state(), step=args.step)
    if not step:
        raise checkpoint.CheckpointError(f"no checkpoint in {args.workdir}/checkpoints")
    out = {"step": step}
    for ev in evals:
        out.update(ev.run(jax.device_get(state)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_jax.score", description=__doc__.split(
        "\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="a run directory (config.json, checkpoints/)")
    src.add_argument("--images", help="a folder of PNG/JPEG images")
    p.add_argument("--dataset", help="with --images: the dataset they imitate")
    p.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    p.add_argument("--evals", default="classifier", help="comma-separated: classifier, "
                   "inception (default: %(default)s)")
    p.add_argument("--inception_weights", help="converted Inception weights (.npz)")
    p.add_argument("--num_samples", type=int, help="generated samples to score")
    p.add_argument("--reference_num_samples", type=int,
                   help="real images behind the reference statistics")
    p.add_argument("--stats_dir", help="where reference statistics are cached")
    p.add_argument("--data_dir", help="TFDS data dir of the real images")
    args = p.parse_args(argv)
    if args.images and not args.dataset:
        p.error("--images needs --dataset")
    bad = [e for e in args.evals.split(",") if e not in QUALITY_EVALS]
    if bad:
        p.error(f"--evals: unknown {bad}; choose from {QUALITY_EVALS}")
    from wgan_jax import errors
    try:
        print(json.dumps(score(args), indent=1))
    except Exception as e:  # noqa: BLE001 (the table decides; bugs are re-raised)
        status = errors.exit_status(e)
        if status is None and isinstance(e, (ValueError, FileNotFoundError)):
            status = errors.EXIT_USER  # bad --images folder or --step
        if status is None:
            raise
        print(f"error: {errors.one_line(e)}", file=sys.stderr)
        return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
