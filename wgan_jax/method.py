"""The one factory from a config to a run's objects: `Method.from_config(config)`.

A `Method` is the typed, validated description of what is trained and how (loss, penalty,
clipping, n_critic, EMA, optimizers and schedule, model, data set, batch and length). It builds
the networks, the two optimizers and the step settings; train.py, the experiments and the
benchmarks all start here, and nothing else turns a config into objects. Validation happens once,
in `from_config`, with a `ConfigError` naming the field; the modules below trust their arguments.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import optax

from wgan_jax import config as config_lib
from wgan_jax import registry
from wgan_jax.models import Models, build_models
from wgan_jax.optim import learning_rate_schedule, make_optimizer
from wgan_jax.state import TrainState, create_train_state
from wgan_jax.step import StepConfig

# The official WGAN code's critic warm-up: 100 critic iterations for the first 25 generator
# steps and every 500th.
WARMUP_CRITIC_ITERS, WARMUP_STEPS, WARMUP_EVERY = 100, 25, 500


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """`config.model`: the architecture and its options."""

    arch: str = "toy"
    critic_norm: str = "none"
    generator_norm: str = "none"
    conv_impl: str = "auto"
    toy_hidden: int = 512
    toy_depth: int = 3
    extra_layers: int = 0
    compute_dtype: str = "float32"
    width: int = 0  # the ResNets' DIM; 0: official
    conditioning: str = "none"  # config.conditioning
    num_classes: int = 0  # the dataset's, for a conditional model
    channels: int = 0  # the dataset's image channels where they differ from the arch's

    def build(self) -> Models:
        """The generator and critic (official layers and inits)."""
        cond = ({} if self.conditioning == "none" else
                {"conditioning": self.conditioning, "num_classes": self.num_classes})
        # Passed only when set: the other archs' builders take neither.
        cond.update({k: getattr(self, k) for k in ("width", "channels") if getattr(self, k)})
        return build_models(self.arch, critic_norm=self.critic_norm,
                            generator_norm=self.generator_norm, conv_impl=self.conv_impl,
                            toy_hidden=self.toy_hidden, toy_depth=self.toy_depth,
                            extra_layers=self.extra_layers, compute_dtype=self.compute_dtype,
                            **cond)


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """`config.optimizer`: one optimizer description used for both networks."""

    name: str = "adam"
    learning_rate: float = 1e-4
    b1: float = 0.5
    b2: float = 0.9
    eps: float = 1e-8
    rms_decay: float = 0.9
    lr_schedule: str = "constant"

    def make(self, total_updates: int, clip_value: float = 0.0) -> optax.GradientTransformation:
        """The optax optimizer for `total_updates` updates, ending in clipping if clip_value>0."""
        lr = learning_rate_schedule(self.learning_rate, self.lr_schedule, total_updates)
        return make_optimizer(self.name, lr, b1=self.b1, b2=self.b2, eps=self.eps,
                              rms_decay=self.rms_decay,
                              clip_value=clip_value if clip_value > 0 else None)


@dataclasses.dataclass(frozen=True)
class Method:
    """What a run trains and how, validated. Build it with `Method.from_config`."""

    dataset: str
    model: ModelSpec
    optimizer: OptimizerSpec
    step: StepConfig
    n_critic: int = 5
    critic_warmup: bool = False
    clip_value: float = 0.0
    num_train_steps: int = 1000
    batch_size: int = 64
    seed: int = 0
    fast_compile: bool = False
    dequantize: float = 0.0  # width of U(0, w) noise on real images (data/feed.py)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, num_devices: int = 1) -> Method:
        """Validate `config` (one ConfigError naming the field) and describe its method."""
        config_lib.validate(config, num_devices=num_devices)
        data, arch = registry.dataset(config.dataset), registry.arch(config.model.arch)
        from_top = {"compute_dtype": config.compute_dtype, "conditioning": config.conditioning,
                    "num_classes": data.num_classes if config.conditioning != "none" else 0,
                    "channels": (data.shape[-1] if data.shape[-1] != arch.data_shape[-1]
                                 else 0)}
        return cls(
            dataset=config.dataset,
            model=ModelSpec(**from_top,
                            **{f.name: config.model[f.name] for f in dataclasses.fields(ModelSpec)
                               if f.name not in from_top}),
            optimizer=OptimizerSpec(**{f.name: config.optimizer[f.name]
                                       for f in dataclasses.fields(OptimizerSpec)}),
            step=StepConfig(loss=config.loss, gp_weight=float(config.gp_weight),
                            gp_one_sided=bool(config.gp_one_sided),
                            real_label_smoothing=float(config.real_label_smoothing),
                            label_flip_prob=float(config.label_flip_prob),
                            ema_decay=float(config.ema_decay),
                            conditioning=config.conditioning,
                            acgan_critic_weight=float(config.acgan_critic_weight),
                            acgan_generator_weight=float(config.acgan_generator_weight),
                            generator_batch_size=config.generator_batch_size),
            n_critic=config.n_critic, critic_warmup=bool(config.critic_warmup),
            clip_value=float(config.clip_value), num_train_steps=config.num_train_steps,
            batch_size=config.batch_size, seed=config.seed,
            fast_compile=bool(config.fast_compile), dequantize=float(config.dequantize))

    @property
    def data(self) -> registry.Dataset:
        return registry.dataset(self.dataset)

    @property
    def conditional(self) -> bool:
        """Whether the networks take class labels (the data then carries them)."""
        return self.model.conditioning != "none"

    @property
    def arch(self) -> registry.Arch:
        return registry.arch(self.model.arch)

    def models(self) -> Models:
        """The generator and critic."""
        return self.model.build()

    def optimizers(self) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
        """(generator optimizer, critic optimizer); schedules span each network's updates, and
        the critic's optimizer ends in weight clipping when `clip_value` > 0."""
        critic_updates = self.num_train_steps * self.n_critic
        return (self.optimizer.make(self.num_train_steps),
                self.optimizer.make(critic_updates, self.clip_value))

    def init_state(self, rng: jax.Array | None = None) -> TrainState:
        """The train state a run starts from (rng default: PRNGKey(seed))."""
        g_tx, d_tx = self.optimizers()
        rng = jax.random.PRNGKey(self.seed) if rng is None else rng
        return create_train_state(self.models(), g_tx, d_tx, rng)

    def critic_iterations(self, step: int) -> int:
        """Critic iterations of 0-based generator step `step` (official warm-up if enabled)."""
        return critic_iterations(step, self.n_critic, self.critic_warmup)

    def critic_iterations_before(self, step: int) -> int:
        """Critic iterations (real batches consumed) by generator steps 0 .. step-1."""
        if not self.critic_warmup:
            return step * self.n_critic
        return sum(self.critic_iterations(s) for s in range(step))


def critic_iterations(step: int, n_critic: int, warmup: bool) -> int:
    """Critic iterations for 0-based generator step `step` (official WGAN warm-up if enabled)."""
    if warmup and (step < WARMUP_STEPS or step % WARMUP_EVERY == 0):
        return WARMUP_CRITIC_ITERS
    return n_critic


def config_with(overrides: Mapping[str, Any] | ml_collections.ConfigDict | None = None,
                base: ml_collections.ConfigDict | None = None,
                **fields) -> ml_collections.ConfigDict:
    """A full config: `base` (default `base_config()`) with `overrides` and `fields` applied.

    Keys are config field names, nested ones either as sub-dicts or dotted ('model.arch'). An
    unknown field is refused with a ConfigError, so a typo cannot silently do nothing.
    """
    c = config_lib.base_config() if base is None else ml_collections.ConfigDict(base)
    items = dict(overrides.items()) if overrides is not None else {}
    items.update(fields)
    for key, value in _flatten(items):
        if key in config_lib.RENAMED:
            raise config_lib.renamed_error(key)
        node, parts = c, key.split(".")
        for p in parts[:-1]:
            if p not in node:
                raise config_lib.ConfigError(f"config has no field {key!r}")
            node = node[p]
        if parts[-1] not in node:
            raise config_lib.ConfigError(f"config has no field {key!r}")
        node[parts[-1]] = value
    return c


def _flatten(items: Mapping[str, Any], prefix: str = ""):
    for k, v in items.items():
        if isinstance(v, Mapping | ml_collections.ConfigDict):
            yield from _flatten(dict(v.items()), f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v
