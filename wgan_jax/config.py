"""Default settings shared by the configs, and validation of a config before anything compiles.

Every interval is counted in generator steps (one step = n_critic critic updates + one
generator update).
"""
from __future__ import annotations

import math
import os

import ml_collections

from wgan_jax import registry
from wgan_jax.layers import COMPUTE_DTYPES, CONV_IMPLS
from wgan_jax.losses import LOSSES
from wgan_jax.models.common import CRITIC_NORMS, GENERATOR_NORMS
from wgan_jax.optim import OPTIMIZERS, SCHEDULES


class ConfigError(ValueError):
    """A config value is invalid; the message names the field and what to use instead."""


# Fields that moved: old name -> new name (both relative to `config.`).
RENAMED: dict[str, str] = {
    "sample_every_steps": "eval.samples.every_steps",
    "eval_every_steps": "eval.toy.every_steps",
    "eval.num_sample_images": "eval.samples.num_images",
    "eval.num_samples": "eval.toy.num_samples",
    "eval.w1_samples": "eval.toy.w1_samples",
    "eval.inception_weights": "eval.inception.weights",
    "eval.inception_every_steps": "eval.inception.every_steps",
    "eval.inception_num_samples": "eval.inception.num_samples",
    "eval.inception_resize": "eval.inception.resize",
    "eval.kid_subset_size": "eval.inception.kid_subset_size",
    "eval.kid_num_subsets": "eval.inception.kid_num_subsets",
    "eval.pr_k": "eval.inception.pr_k",
    "eval.is_num_splits": "eval.inception.is_num_splits (and eval.classifier.is_num_splits)",
    "eval.classifier_every_steps": "eval.classifier.every_steps",
    "eval.classifier_num_samples": "eval.classifier.num_samples",
}


def renamed_error(field: str) -> ConfigError:
    """The error for a moved field `field` (relative to `config.`), naming its new name."""
    return ConfigError(f"config.{field} was renamed: use config.{RENAMED[field]}")


def _has_field(config: ml_collections.ConfigDict, field: str) -> bool:
    node = config
    for part in field.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return False
        node = node[part]
    return True


def base_config() -> ml_collections.ConfigDict:
    """WGAN-GP on the 25-gaussians toy with the official gan_toy.py settings."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "25gaussians"
    c.data_dir = ml_collections.FieldReference(None, field_type=str)
    # Original files (MNIST/Fashion-MNIST idx) to prepare the TFDS set from when data_dir lacks
    # it; None: the registry's default (Debian's /usr/share/datasets/fashion-mnist).
    c.source_dir = ml_collections.FieldReference(None, field_type=str)
    c.shuffle_buffer = 10_000
    c.num_train_steps = 100_000
    c.batch_size = 256  # global, split over all devices
    c.n_critic = 5
    c.critic_warmup = False  # WGAN code: 100 critic iters for the first 25 and every 500th step
    c.loss = "wasserstein"
    c.gp_weight = 0.1  # lambda; 0 disables the gradient penalty
    c.gp_one_sided = False
    c.clip_value = 0.0  # weight clipping bound c; 0 disables clipping
    c.real_label_smoothing = 0.0  # standard GAN losses only
    c.label_flip_prob = 0.0  # standard GAN losses only
    c.ema_decay = 0.0  # EMA of generator weights used for samples/eval; 0 = off
    # Class conditioning: 'none', 'acgan' or 'projection' (labelled datasets only; the number of
    # classes is the dataset's). ACGAN class-loss weights: gan_cifar_resnet.py's.
    c.conditioning = "none"
    c.acgan_critic_weight = 1.0
    c.acgan_generator_weight = 0.1
    c.generator_batch_size = 0  # global batch of the generator update; 0: batch_size
    c.dequantize = 0.0  # width w of U(0, w) noise on real 8-bit images (data/feed.py); 0: off
    # Matmul/convolution operands: 'float32', or 'bfloat16' with float32 accumulation and
    # results (parameters, optimizer states, EMA, norms, penalty and losses stay float32).
    c.compute_dtype = "float32"
    c.fast_compile = False  # XLA:CPU: ~1/3 shorter compile for a few % of step time
    # JAX's persistent compilation cache (set by run.py before anything compiles): a rerun or a
    # resumed run loads the compiled step instead of compiling it. None: off.
    c.compilation_cache_dir = ml_collections.FieldReference(None, field_type=str)

    c.model = ml_collections.ConfigDict()
    c.model.arch = "toy"
    c.model.critic_norm = "none"
    c.model.generator_norm = "none"
    c.model.conv_impl = "auto"  # 'matmul' on CPU, 'lax' on GPU/TPU
    c.model.toy_hidden = 512
    c.model.toy_depth = 3
    c.model.extra_layers = 0  # dcgan64 only: the WGAN code's --n_extra_layers
    c.model.width = 0  # resnet32/resnet64 only: DIM; 0: the official width (128 / 64)

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-4
    c.optimizer.b1 = 0.5
    c.optimizer.b2 = 0.9
    c.optimizer.eps = 1e-8
    c.optimizer.rms_decay = 0.9
    c.optimizer.lr_schedule = "constant"

    c.log_every_steps = 1
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 3
    # Examples the run trains on: 0, the whole training split; N, the first N of a fixed
    # permutation of it (seeded by `seed`; image data only). The test split stays held out.
    c.train_subset = 0
    # The workdir's hold (wgan_jax/workdir.py): how long a new run waits for a run that is
    # saving on its way out (preemption), and after how many seconds without a heartbeat a run
    # on another host counts as dead and is taken over.
    c.hold_wait_seconds = 120.0
    c.hold_stale_seconds = 300.0
    # Resume from the newest undamaged checkpoint, moving damaged ones aside (not deleted),
    # instead of refusing a step whose checksums do not match.
    c.restore_fallback = False

    # Evaluators run on the train state at their own cadence (wgan_jax/evaluators): each has
    # its own block config.eval.<name> with `every_steps`, defaults from its module.
    c.evals = ("samples", "toy")
    c.eval = ml_collections.ConfigDict()
    # Shared by the image-quality evaluators ('inception', 'classifier').
    c.eval.reference_split = "train"  # real images behind the cached reference statistics
    c.eval.reference_num_samples = 10_000
    # Where reference statistics are cached; None: <data_dir>/wgan_jax_reference_stats.
    c.eval.stats_dir = ml_collections.FieldReference(None, field_type=str)
    from wgan_jax import evaluators  # its modules import neither this one nor method
    for name, spec in evaluators.REGISTRY.items():
        c.eval[name] = spec.defaults()
    return c


def _fail(field: str, value, hint: str):
    raise ConfigError(f"config.{field}={value!r} is invalid: {hint}")


def _positive_int(config, field: str):
    value = config
    for part in field.split("."):
        value = value[part]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        _fail(field, value, "must be a positive integer")


def _validate_evals(config: ml_collections.ConfigDict) -> None:
    from wgan_jax import evaluators
    evals = tuple(config.evals)
    for name in evals:
        if name not in evaluators.REGISTRY:
            _fail("evals", evals,
                  f"unknown evaluator {name!r}; choose from {tuple(evaluators.REGISTRY)}")
        needs, data = evaluators.REGISTRY[name].needs, registry.dataset(config.dataset)
        if needs == "toy" and not data.is_toy:
            _fail("evals", evals, f"evaluator {name!r} needs a toy dataset, but dataset is "
                  f"{config.dataset!r}; drop it, e.g. config.evals=('samples',)")
        if needs in ("image", "classifier") and data.is_toy:
            _fail("evals", evals, f"evaluator {name!r} needs an image dataset, but dataset is "
                  f"{config.dataset!r}; drop it")
        if needs == "classifier" and not data.classifier:
            with_weights = [d.name for d in registry.DATASETS.values() if d.classifier]
            _fail("evals", evals, f"evaluator {name!r} has no committed classifier for "
                  f"{config.dataset!r} (only for {with_weights}); train one with "
                  "`python -m wgan_jax.quality.train_classifier` or drop it")
    if len(set(evals)) != len(evals):
        _fail("evals", evals, "names an evaluator twice")
    _positive_int(config, "eval.reference_num_samples")
    for name, spec in evaluators.REGISTRY.items():
        if name not in config.eval:
            _fail(f"eval.{name}", None, "the evaluator's config block is missing; start from "
                  "wgan_jax.config.base_config()")
        spec.validate(config.eval[name], config, _fail, name in evals)


def _validate_train_subset(config: ml_collections.ConfigDict) -> None:
    n = config.train_subset
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        _fail("train_subset", n, "must be 0 (the whole training split) or a positive integer")
    if n and registry.dataset(config.dataset).is_toy:
        _fail("train_subset", n, f"toy data ({config.dataset!r}) are drawn fresh every step, "
              "there is no finite training set to take a subset of; set it to 0")


def _validate_conditioning(config: ml_collections.ConfigDict, num_devices: int) -> None:
    from wgan_jax.models.conditional import CONDITIONINGS
    data = registry.dataset(config.dataset)
    if config.conditioning not in CONDITIONINGS:
        _fail("conditioning", config.conditioning, f"choose one of {CONDITIONINGS}")
    if config.conditioning != "none" and not data.num_classes:
        labelled = [d.name for d in registry.DATASETS.values() if d.num_classes]
        _fail("conditioning", config.conditioning, f"dataset {config.dataset!r} has no class "
              f"labels; use conditioning='none' or a labelled dataset {labelled}")
    for f in ("acgan_critic_weight", "acgan_generator_weight"):
        if not 0 <= config[f] < float("inf"):
            _fail(f, config[f], "must be a finite weight >= 0")
    g = config.generator_batch_size
    if not isinstance(g, int) or isinstance(g, bool) or g < 0:
        _fail("generator_batch_size", g, "must be 0 (the same as batch_size) or a positive "
              "integer")
    if g % num_devices:
        _fail("generator_batch_size", g, f"the generator's global batch must divide evenly "
              f"over the {num_devices} devices; use a multiple of {num_devices}")
    if not 0 <= config.dequantize < float("inf"):
        _fail("dequantize", config.dequantize, "the noise width must be >= 0 (0: off)")
    if config.dequantize > 0 and data.is_toy:
        _fail("dequantize", config.dequantize, f"dequantization is for 8-bit images, but "
              f"dataset {config.dataset!r} is 2-D points; set it to 0")


def validate(config: ml_collections.ConfigDict, num_devices: int = 1) -> None:
    """Raise one ConfigError naming the first invalid field; return None when all is well."""
    for old in RENAMED:
        if _has_field(config, old):
            raise renamed_error(old)
    for f in ("num_train_steps", "batch_size", "n_critic", "log_every_steps",
              "checkpoint_every_steps", "keep_checkpoints", "model.toy_hidden",
              "model.toy_depth", "shuffle_buffer"):
        _positive_int(config, f)
    _validate_train_subset(config)
    if config.dataset not in registry.DATASETS:
        _fail("dataset", config.dataset, f"choose one of {sorted(registry.DATASETS)}")
    m = config.model
    if m.arch not in registry.ARCHS:
        _fail("model.arch", m.arch, f"choose one of {tuple(registry.ARCHS)}")
    fits = registry.DATASETS[config.dataset].archs
    if m.arch not in fits:
        _fail("model.arch", m.arch, f"dataset {config.dataset!r} needs model.arch in {fits}")
    if m.extra_layers < 0:
        _fail("model.extra_layers", m.extra_layers, "must be >= 0")
    if m.extra_layers and m.arch != "dcgan64":
        _fail("model.extra_layers", m.extra_layers,
              f"extra layers exist only in model.arch='dcgan64' (got {m.arch!r}); set it to 0")
    if not isinstance(m.width, int) or m.width < 0:
        _fail("model.width", m.width, "must be 0 (the official width) or a positive integer")
    if m.width and m.arch not in ("resnet32", "resnet64"):
        _fail("model.width", m.width, f"only the ResNets take a width, not model.arch="
              f"{m.arch!r}; set it to 0")
    if m.critic_norm not in CRITIC_NORMS:
        _fail("model.critic_norm", m.critic_norm, f"choose one of {CRITIC_NORMS}")
    if m.generator_norm not in GENERATOR_NORMS:
        _fail("model.generator_norm", m.generator_norm, f"choose one of {GENERATOR_NORMS}")
    if m.conv_impl not in ("auto",) + CONV_IMPLS:
        _fail("model.conv_impl", m.conv_impl, f"choose 'auto' or one of {CONV_IMPLS}")
    if config.compute_dtype not in COMPUTE_DTYPES:
        _fail("compute_dtype", config.compute_dtype, f"choose one of {COMPUTE_DTYPES}")
    if config.loss not in LOSSES:
        _fail("loss", config.loss, f"choose one of {tuple(LOSSES)}")
    if not 0 <= config.gp_weight < math.inf:
        _fail("gp_weight", config.gp_weight, "the penalty weight lambda must be finite and >= 0")
    for f in ("hold_wait_seconds", "hold_stale_seconds"):
        if not config[f] >= 0:
            _fail(f, config[f], "must be >= 0 seconds")
    if not 0 <= config.clip_value < math.inf:
        _fail("clip_value", config.clip_value, "must be > 0 to clip, or 0 for no clipping")
    if config.gp_weight > 0 and m.critic_norm == "batch":
        _fail("model.critic_norm", "batch",
              "batch norm in the critic mixes examples, but the gradient penalty is per example "
              "(WGAN-GP paper, sec. 4): use 'layer' or 'none', or set gp_weight=0")
    if not 0 <= config.ema_decay < 1:
        _fail("ema_decay", config.ema_decay, "must be in [0, 1)")
    if not 0 <= config.real_label_smoothing < 1:
        _fail("real_label_smoothing", config.real_label_smoothing, "must be in [0, 1)")
    if not 0 <= config.label_flip_prob < 0.5:
        _fail("label_flip_prob", config.label_flip_prob, "must be in [0, 0.5)")
    _validate_conditioning(config, num_devices)
    _validate_evals(config)
    o = config.optimizer
    if o.name not in OPTIMIZERS:
        _fail("optimizer.name", o.name, f"choose one of {OPTIMIZERS}")
    if not 0 < o.learning_rate < math.inf:
        _fail("optimizer.learning_rate", o.learning_rate, "must be finite and > 0")
    if o.lr_schedule not in SCHEDULES:
        _fail("optimizer.lr_schedule", o.lr_schedule, f"choose one of {SCHEDULES}")
    for f in ("b1", "b2", "rms_decay"):
        if not 0 <= o[f] < 1:
            _fail(f"optimizer.{f}", o[f], "must be in [0, 1)")
    if not o.eps > 0:
        _fail("optimizer.eps", o.eps, "must be > 0")
    if config.batch_size % num_devices:
        _fail("batch_size", config.batch_size,
              f"the global batch must divide evenly over the {num_devices} devices; use a "
              f"multiple of {num_devices}")
    # (ConfigDict already refuses values of the wrong type for every field.)
    cache = config.compilation_cache_dir
    if cache and os.path.exists(cache) and not os.path.isdir(cache):
        _fail("compilation_cache_dir", cache,
              "exists and is not a directory; pass a directory path (created if missing)")
    if config.source_dir is not None and not os.path.isdir(config.source_dir):
        _fail("source_dir", config.source_dir, "is not a directory; point it at the folder "
              "with the original idx files, or leave it None")
    if config.data_dir is not None and not isinstance(config.data_dir, str):
        _fail("data_dir", config.data_dir, "must be a path string or None")
