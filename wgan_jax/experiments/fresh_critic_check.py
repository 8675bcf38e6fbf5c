"""How much of a known W1 the `w1_critic` evaluator's fresh critic finds on the toy mixture.

The "generator" is the 25-gaussian mixture itself with every mode widened from std s1 to s2
(what a toy generator looks like late in training). Its W1 to the data is pinned from both
sides: the mode-by-mode radial coupling costs sqrt(pi/2) (s2 - s1) (an upper bound), and the
1-Lipschitz distance to the nearest mode centre certifies a lower bound (Monte Carlo). Where the
modes stay apart (s2 << 0.35, half their spacing) the two agree to about 1%.

    python -m wgan_jax.experiments.fresh_critic_check --steps 2000 --targets 0.05,0.15
"""
from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax import registry

_SPREAD = math.sqrt(math.pi / 2)  # E|Z| of a standard 2-D normal


def _mixture():
    m = registry.mixture("25gaussians")
    return np.asarray(m.centers, np.float64) / m.divisor, m.std / m.divisor


def sample(key: jax.Array, n: int, std: float) -> jax.Array:
    """n points of the 25-gaussian mixture with every mode's std set to `std`."""
    centers, _ = _mixture()
    k_mode, k_noise = jax.random.split(key)
    idx = jax.random.randint(k_mode, (n,), 0, len(centers))
    return (jnp.asarray(centers, jnp.float32)[idx]
            + std * jax.random.normal(k_noise, (n, 2), jnp.float32))


def widened_w1(target: float, n: int = 200_000, seed: int = 0) -> tuple[float, float, float]:
    """(s2, lower, upper): the mode std whose coupling bound is `target`, and the bounds on the
    W1 between the mixture and its widened copy (lower by the nearest-centre witness)."""
    centers, s1 = _mixture()
    s2 = s1 + target / _SPREAD
    rng = np.random.default_rng(seed)

    def witness_mean(std):
        x = centers[rng.integers(0, len(centers), n)] + std * rng.normal(size=(n, 2))
        return np.min(np.linalg.norm(x[:, None] - centers[None], axis=-1), axis=1).mean()

    return s2, float(witness_mean(s2) - witness_mean(s1)), _SPREAD * (s2 - s1)


def run(*, hidden: int, steps: int, learning_rate: float, batch_size: int, one_sided: bool,
        targets: tuple[float, ...], num_samples: int, seed: int = 0) -> list[dict]:
    """One fresh critic per target, trained as the `w1_critic` evaluator trains it."""
    from configs import wgan_gp
    from wgan_jax.evaluators import w1_critic
    from wgan_jax.method import Method

    c = wgan_gp.get_config()
    c.model.toy_hidden = hidden
    models = w1_critic.fresh_critic_models(Method.from_config(c), "", "")
    training = w1_critic.CriticTraining(steps=steps, batch_size=batch_size,
                                        learning_rate=learning_rate, one_sided=one_sided)
    _, s1 = _mixture()
    fit = w1_critic.make_fit(models, training, lambda _, k, n: sample(k, n, s1),
                             lambda s, k, n: sample(k, n, s))
    rows = []
    for target in targets:
        s2, lower, upper = widened_w1(target)
        params, variables, _ = fit(jax.random.PRNGKey(seed), None, jnp.float32(s2))
        k_real, k_fake = jax.random.split(jax.random.PRNGKey(seed + 1))
        est, se = w1_critic.heldout_estimate(
            w1_critic.critic_values(models, params, variables,
                                    np.asarray(sample(k_real, num_samples, s1))),
            w1_critic.critic_values(models, params, variables,
                                    np.asarray(sample(k_fake, num_samples, s2))))
        rows.append({"w1_lower": lower, "w1_upper": upper, "w1_heldout": est, "stderr": se,
                     "found": est / lower})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512, help="toy critic width (the default run's)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--one_sided", action="store_true")
    p.add_argument("--targets", default="0.05,0.15")
    p.add_argument("--num_samples", type=int, default=20_000)
    a = p.parse_args(argv)
    rows = run(hidden=a.hidden, steps=a.steps, learning_rate=a.learning_rate,
               batch_size=a.batch_size, one_sided=a.one_sided,
               targets=tuple(float(t) for t in a.targets.split(",")),
               num_samples=a.num_samples)
    print(f"fresh critic: {a.hidden} units, {a.steps} steps, lr {a.learning_rate:g}, batch "
          f"{a.batch_size}, {'one' if a.one_sided else 'two'}-sided penalty")
    print("| W1 (bounds) | w1_heldout | found |\n|---|---|---|")
    for r in rows:
        print(f"| {r['w1_lower']:.4f}-{r['w1_upper']:.4f} | {r['w1_heldout']:.4f} +- "
              f"{r['stderr']:.4f} | {100 * r['found']:.0f}% |")


if __name__ == "__main__":
    main()
