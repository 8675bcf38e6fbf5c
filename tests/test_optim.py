"""Tests of wgan_jax.optim: weight clipping, TF1 RMSProp, optimizer and schedule factories."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wgan_jax import optim

C = 0.01
ULP = float(np.spacing(np.float32(C)))


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(rng.uniform(-C, C, size=(40,)), jnp.float32),
            "b": {"k": jnp.asarray(rng.uniform(-C, C, size=(6, 5)), jnp.float32)}}


def _grads(seed, scale):
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(rng.normal(size=(40,)) * scale, jnp.float32),
            "b": {"k": jnp.asarray(rng.normal(size=(6, 5)) * scale, jnp.float32)}}


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


# ---------------------------------------------------------------- clip_params


@pytest.mark.parametrize("name,lr", [("sgd", 1.0), ("rmsprop", 0.05)])
def test_clipped_params_stay_in_box(name, lr):
    tx = optim.make_optimizer(name, lr, eps=1e-10, clip_value=C)
    params = _params()
    state = tx.init(params)

    @jax.jit
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    at_bound = 0
    for t in range(200):
        params, state = step(params, state, _grads(t, 1e4))
        for leaf in _leaves(params):
            assert np.all(np.abs(leaf) <= C + ULP), (t, np.abs(leaf).max())
    for leaf in _leaves(params):
        at_bound += int(np.sum(np.abs(np.abs(leaf) - C) <= ULP))
    # with huge gradients nearly every weight is pushed onto the box boundary
    assert at_bound >= 60, at_bound


def test_clip_params_is_step_then_clip():
    # A plain update u: the result must be clip(p + u), not p + clip(u).
    p = {"w": jnp.array([0.0, 0.009, -0.009, 0.005], jnp.float32)}
    u = {"w": jnp.array([0.5, 0.0005, -0.02, -0.001], jnp.float32)}
    tx = optim.clip_params(C)
    upd, _ = tx.update(u, tx.init(p), p)
    new = np.asarray(optax.apply_updates(p, upd)["w"])
    np.testing.assert_allclose(new, [0.01, 0.0095, -0.01, 0.004], rtol=0, atol=ULP)


def _np_rmsprop_clip(p, gs, lr, decay=0.9, eps=1e-10, c=C):
    """TF1 RMSProp (mean square starts at 1, eps inside the sqrt) then clip, in float64."""
    p = np.asarray(p, np.float64).copy()
    ms = np.ones_like(p)
    out = []
    for g in gs:
        g = np.asarray(g, np.float64)
        ms = decay * ms + (1 - decay) * g * g
        p = np.clip(p - lr * g / np.sqrt(ms + eps), -c, c)
        out.append(p.copy())
    return out


def test_rmsprop_clip_first_two_steps_by_hand():
    lr = 4e-3
    rng = np.random.default_rng(5)
    p0 = rng.uniform(-C, C, size=50).astype(np.float32)
    # gradients from 0.1 to 30: the mean-square slot's initial 1 matters for the small ones
    g1 = (rng.choice([-1, 1], 50) * np.exp(rng.uniform(np.log(0.1), np.log(30), 50))
          ).astype(np.float32)
    g2 = (rng.normal(size=50) * 5).astype(np.float32)
    tx = optim.make_optimizer("rmsprop", lr, eps=1e-10, clip_value=C)
    params = {"w": jnp.asarray(p0)}
    state = tx.init(params)
    got = []
    for g in (g1, g2):
        u, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, u)
        got.append(np.asarray(params["w"]))
    want = _np_rmsprop_clip(p0, [g1, g2], lr)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2 * ULP)
    # the reference really exercises both branches: some weights clipped, some not
    assert 0 < np.sum(np.abs(want[0]) == C) < 50
    # and a mean square starting at 0 (PyTorch) would be far off for the small gradients
    ms0 = 0.1 * g1.astype(np.float64) ** 2
    torch_like = np.clip(p0 - lr * g1 / (np.sqrt(ms0) + 1e-10), -C, C)
    assert np.max(np.abs(torch_like - want[0])) > 1e-3


def test_rmsprop_without_clip_hand_value_eps_inside_sqrt():
    # A large eps makes its placement visible: TF1 puts it inside the sqrt.
    tx = optim.make_optimizer("rmsprop", 0.1, eps=0.3)
    p = {"w": jnp.array([1.0, -2.0])}
    g = {"w": jnp.array([3.0, 0.5])}
    u, _ = tx.update(g, tx.init(p), p)
    # ms = 0.9 + 0.1 g^2 = [1.8, 0.925]
    want = np.array([1.0 - 0.1 * 3.0 / np.sqrt(1.8 + 0.3), -2.0 - 0.1 * 0.5 / np.sqrt(1.225)])
    np.testing.assert_allclose(np.asarray(optax.apply_updates(p, u)["w"]), want, rtol=1e-6)
    outside = np.array([1.0 - 0.1 * 3.0 / (np.sqrt(1.8) + 0.3),
                        -2.0 - 0.1 * 0.5 / (np.sqrt(0.925) + 0.3)])
    assert np.max(np.abs(want - outside)) > 1e-3


def test_rmsprop_default_epsilon_is_tf1():
    # Constant tiny gradients: the mean square decays from 1 towards g^2 = 1e-10, where the
    # epsilon inside the sqrt decides the step size.
    lr, g, steps = 1e-3, 1e-5, 300
    tx = optim.make_optimizer("rmsprop", lr)
    params = {"w": jnp.zeros((3,), jnp.float32)}

    def body(_, carry):
        p, s = carry
        u, s = tx.update({"w": jnp.full((3,), g, jnp.float32)}, s, p)
        return optax.apply_updates(p, u), s

    params, _ = jax.jit(lambda p: jax.lax.fori_loop(0, steps, body, (p, tx.init(p))))(params)
    p, ms = 0.0, 1.0
    for _ in range(steps):
        ms = 0.9 * ms + 0.1 * g * g
        p -= lr * g / np.sqrt(ms + 1e-10)
    np.testing.assert_allclose(np.asarray(params["w"]), p, rtol=1e-3)


def test_adam_first_two_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.5, 0.9, 1e-8
    tx = optim.make_optimizer("adam", lr)
    p = np.array([0.3, -0.2, 1.0])
    g1, g2 = np.array([2.0, -0.5, 0.1]), np.array([-1.0, -0.5, 0.4])
    params = {"w": jnp.asarray(p, jnp.float32)}
    state = tx.init(params)
    m = v = np.zeros(3)
    for t, g in enumerate((g1, g2), start=1):
        u, state = tx.update({"w": jnp.asarray(g, jnp.float32)}, state, params)
        params = optax.apply_updates(params, u)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(np.asarray(params["w"]), p, rtol=1e-5)


def test_sgd_hand_value():
    tx = optim.make_optimizer("sgd", 0.5)
    p = {"w": jnp.array([1.0, 2.0])}
    u, _ = tx.update({"w": jnp.array([0.2, -4.0])}, tx.init(p), p)
    np.testing.assert_allclose(np.asarray(optax.apply_updates(p, u)["w"]), [0.9, 4.0])


def test_clip_params_requires_params():
    tx = optim.clip_params(C)
    g = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="params"):
        tx.update(g, tx.init(g))
    chained = optim.make_optimizer("sgd", 0.1, clip_value=C)
    with pytest.raises(ValueError, match="params"):
        chained.update(g, chained.init(g))


@pytest.mark.parametrize("c", [0.0, -0.01])
def test_clip_value_must_be_positive(c):
    with pytest.raises(ValueError):
        optim.clip_params(c)
    with pytest.raises(ValueError):
        optim.make_optimizer("rmsprop", 5e-5, clip_value=c)


def test_make_optimizer_rejects_unknown_name():
    with pytest.raises(ValueError, match="optimizer"):
        optim.make_optimizer("adamw", 1e-4)


# ---------------------------------------------------------------- schedules


def test_linear_schedule_end_points():
    sched = optim.learning_rate_schedule(1e-3, "linear", 100)
    assert float(sched(0)) == pytest.approx(1e-3)
    assert float(sched(50)) == pytest.approx(5e-4)
    assert float(sched(100)) == 0.0
    assert float(sched(150)) == 0.0


def test_constant_schedule_and_unknown():
    assert optim.learning_rate_schedule(2e-4, "constant", 10) == 2e-4
    with pytest.raises(ValueError):
        optim.learning_rate_schedule(2e-4, "cosine", 10)


def test_linear_schedule_drives_sgd():
    # The schedule is what the optimizer uses: step t moves by lr_t * g.
    tx = optim.make_optimizer("sgd", optim.learning_rate_schedule(1.0, "linear", 4))
    p = {"w": jnp.zeros(())}
    s = tx.init(p)
    moves = []
    for _ in range(5):
        u, s = tx.update({"w": jnp.ones(())}, s, p)
        moves.append(float(u["w"]))
    np.testing.assert_allclose(moves, [-1.0, -0.75, -0.5, -0.25, 0.0], atol=1e-7)
