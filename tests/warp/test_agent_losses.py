"""The Warp agents' loss, GAE, normalisation, schedule and Adam kernels against torch on the same batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import warp as wp

from gaussrl.agents.schedules import adapt_learning_rate
from gaussrl.agents.torch.memory import compute_gae
from gaussrl.agents.warp import losses
from gaussrl.agents.warp.memory import Scaler
from gaussrl.agents.warp.optim import Adam

TOL = {"rtol": 1e-5, "atol": 1e-5}
N, A = 64, 3


def _wp(x, grad=False):
    return wp.array(np.asarray(x, np.float32), dtype=wp.float32, device="cpu", requires_grad=grad)


def _batch(seed):
    rng = np.random.default_rng(seed)
    column = lambda scale=1.0: (rng.normal(size=(N, 1)) * scale).astype(np.float32)  # noqa: E731
    return {
        "log_prob": column(),
        "old_log_prob": column() + column(0.3),
        "advantages": column(),
        "predicted": column(),
        "old_values": column(),
        "returns": column(),
        "entropy": rng.normal(size=(N, A)).astype(np.float32),
    }


def _torch_ppo_loss(b, ratio_clip, value_clip, clip_values, entropy_scale, value_scale):  # noqa: PLR0917
    """The torch agent's loss (agents/torch/ppo.py, PPO._loss) on given tensors."""
    ratio = torch.exp(b["log_prob"] - b["old_log_prob"])
    adv = b["advantages"]
    surrogate = torch.min(adv * ratio, adv * ratio.clamp(1.0 - ratio_clip, 1.0 + ratio_clip))
    predicted = b["predicted"]
    if clip_values:
        predicted = b["old_values"] + (predicted - b["old_values"]).clamp(-value_clip, value_clip)
    entropy = b["entropy"].sum(-1).mean()
    policy_loss, value_loss = -surrogate.mean(), F.mse_loss(predicted, b["returns"])
    loss = policy_loss - entropy_scale * entropy if entropy_scale > 0 else policy_loss
    return loss + value_scale * value_loss, (policy_loss, value_loss, entropy)


@pytest.mark.parametrize("clip_values", [False, True])
@pytest.mark.parametrize("entropy_scale", [0.0, 0.01])
def test_ppo_loss_and_gradient_match_torch(clip_values, entropy_scale):
    data = _batch(0)
    grads = ("log_prob", "predicted", "entropy")
    t = {k: torch.tensor(v, requires_grad=k in grads) for k, v in data.items()}
    want, want_metrics = _torch_ppo_loss(t, 0.2, 0.2, clip_values, entropy_scale, 0.5)
    want.backward()
    w = {k: _wp(v, grad=k in grads) for k, v in data.items()}
    loss = wp.zeros(1, dtype=wp.float32, requires_grad=True)
    metrics = wp.zeros(4, dtype=wp.float32)
    tape = wp.Tape()
    with tape:
        names = ("log_prob", "old_log_prob", "advantages", "predicted", "old_values", "returns", "entropy")
        inputs = [*(w[k] for k in names), wp.vec3(0.2, 0.2, float(clip_values)), wp.vec3(entropy_scale, 0.5, 1 / N)]
        wp.launch(losses.ppo_loss_kernel, N, inputs=inputs, outputs=[loss, metrics])
    tape.backward(loss=loss)
    np.testing.assert_allclose(loss.numpy()[0], want.item(), **TOL)
    np.testing.assert_allclose(metrics.numpy()[:3], [m.item() for m in want_metrics], **TOL)
    for name in grads:
        want_grad = np.zeros_like(data[name]) if t[name].grad is None else t[name].grad.numpy()
        np.testing.assert_allclose(w[name].grad.numpy(), want_grad, **TOL, err_msg=name)
    # the batch exercises both sides of the clip (else the test could not tell a missing clip)
    ratio = np.exp(data["log_prob"] - data["old_log_prob"])
    assert (ratio > 1.2).any() and (ratio < 0.8).any()


def test_sac_losses_and_gradients_match_torch():
    rng = np.random.default_rng(1)
    q1, q2, tq1, tq2, log_prob, next_log_prob, rewards = rng.normal(size=(7, N, 1)).astype(np.float32)
    terminated = (rng.random((N, 1)) < 0.2).astype(np.float32)
    alpha, gamma = np.float32(0.7), 0.99
    # target (no gradient), as SAC.update computes it
    next_q = torch.min(torch.tensor(tq1), torch.tensor(tq2)) - alpha * torch.tensor(next_log_prob)
    target_want = torch.tensor(rewards) + gamma * (1.0 - torch.tensor(terminated)) * next_q
    target = wp.empty((N, 1), dtype=wp.float32)
    alpha_w = _wp([alpha])
    inputs = [_wp(rewards), _wp(terminated), _wp(tq1), _wp(tq2), _wp(next_log_prob), alpha_w, gamma]
    wp.launch(losses.soft_target_kernel, N, inputs=inputs, outputs=[target])
    np.testing.assert_allclose(target.numpy(), target_want.numpy(), **TOL)
    # critic loss
    t1, t2 = torch.tensor(q1, requires_grad=True), torch.tensor(q2, requires_grad=True)
    critic_want = (F.mse_loss(t1, target_want) + F.mse_loss(t2, target_want)) / 2.0
    critic_want.backward()
    w1, w2 = _wp(q1, True), _wp(q2, True)
    loss, metrics = wp.zeros(1, dtype=wp.float32, requires_grad=True), wp.zeros(4, dtype=wp.float32)
    tape = wp.Tape()
    with tape:
        wp.launch(losses.critic_loss_kernel, N, inputs=[w1, w2, target, 1 / N], outputs=[loss, metrics])
    tape.backward(loss=loss)
    np.testing.assert_allclose(loss.numpy()[0], critic_want.item(), **TOL)
    np.testing.assert_allclose(metrics.numpy()[3], q1.mean(), **TOL)
    np.testing.assert_allclose(w1.grad.numpy(), t1.grad.numpy(), **TOL)
    np.testing.assert_allclose(w2.grad.numpy(), t2.grad.numpy(), **TOL)
    # actor loss
    tl, t1, t2 = (torch.tensor(x, requires_grad=True) for x in (log_prob, q1, q2))
    actor_want = (alpha * tl - torch.min(t1, t2)).mean()
    actor_want.backward()
    wl, w1, w2 = _wp(log_prob, True), _wp(q1, True), _wp(q2, True)
    loss, metrics = wp.zeros(1, dtype=wp.float32, requires_grad=True), wp.zeros(4, dtype=wp.float32)
    tape = wp.Tape()
    with tape:
        wp.launch(losses.actor_loss_kernel, N, inputs=[wl, w1, w2, alpha_w, 1 / N], outputs=[loss, metrics])
    tape.backward(loss=loss)
    np.testing.assert_allclose(loss.numpy()[0], actor_want.item(), **TOL)
    for got, want in ((wl, tl), (w1, t1), (w2, t2)):
        np.testing.assert_allclose(got.grad.numpy(), want.grad.numpy(), **TOL)


def test_temperature_gradient_matches_torch_autograd():
    log_prob = np.random.default_rng(2).normal(size=(N, 1)).astype(np.float32)
    log_alpha = torch.tensor(0.3, requires_grad=True)
    (-(log_alpha * (torch.tensor(log_prob) + -1.0)).mean()).backward()
    grad = wp.zeros(1, dtype=wp.float32)
    wp.launch(losses.temperature_grad_kernel, N, inputs=[_wp(log_prob), -1.0, 1 / N, grad])
    np.testing.assert_allclose(grad.numpy()[0], log_alpha.grad.item(), **TOL)


def test_gae_matches_the_torch_agents_compute_gae():
    steps, envs = 7, 3
    rng = np.random.default_rng(3)
    rewards, values = rng.normal(size=(2, steps, envs, 1)).astype(np.float32)
    dones = rng.random((steps, envs, 1)) < 0.25
    last = rng.normal(size=(envs, 1)).astype(np.float32)
    want = compute_gae(
        torch.tensor(rewards), torch.tensor(values), torch.tensor(dones), torch.tensor(last),
        discount_factor=0.95, gae_lambda=0.9,
    ).numpy()  # fmt: skip
    flat = lambda x: _wp(np.asarray(x, np.float32).reshape(-1, 1))  # noqa: E731
    advantages, returns = wp.empty((steps * envs, 1), dtype=wp.float32), wp.empty((steps * envs, 1), dtype=wp.float32)
    inputs = [flat(rewards), flat(values), flat(dones), _wp(last), 0.95, 0.9]
    wp.launch(losses.gae_kernel, envs, inputs=inputs, outputs=[advantages, returns])
    np.testing.assert_allclose(advantages.numpy().reshape(steps, envs, 1), want, **TOL)
    np.testing.assert_allclose(returns.numpy().reshape(steps, envs, 1), want + values, **TOL)


def test_advantage_standardisation_matches_torch():
    x = (np.random.default_rng(4).normal(size=(N, 1)) * 3 + 1).astype(np.float32)
    sums = wp.zeros(2, dtype=wp.float64)
    for power in (1, 2):
        wp.launch(losses.moments_kernel, N, inputs=[_wp(x), sums, power])
    out = wp.empty((N, 1), dtype=wp.float32)
    wp.launch(losses.standardize_kernel, N, inputs=[_wp(x), sums], outputs=[out])
    t = torch.tensor(x)
    np.testing.assert_allclose(out.numpy(), ((t - t.mean()) / (t.std() + 1e-8)).numpy(), **TOL)


@pytest.mark.parametrize("kl", [0.0, 0.005, 0.05])
@pytest.mark.parametrize("lr", [1e-3, 9e-3, 1.2e-6])
def test_adaptive_rate_kernel_follows_the_shared_rule(kl, lr):
    rate = _wp([lr])
    wp.launch(losses.adapt_lr_kernel, 1, inputs=[_wp([kl * 4]), 0, 4.0, 0.008, rate])
    np.testing.assert_allclose(rate.numpy()[0], adapt_learning_rate(lr, kl, 0.008), rtol=1e-6)


@pytest.mark.parametrize("max_norm", [0.0, 0.5, 100.0])
def test_adam_with_clipping_matches_torch(max_norm):
    rng = np.random.default_rng(5)
    shapes = [(4, 3), (4, 1), (2,)]
    initial = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(3)]
    params_t = [torch.tensor(p, requires_grad=True) for p in initial]
    optimizer = torch.optim.Adam(params_t, lr=1e-2)
    params_w = [_wp(p, True) for p in initial]
    adam = Adam(params_w, 1e-2, max_norm)
    for step in grads:
        for p, g in zip(params_t, step, strict=True):
            p.grad = torch.tensor(g)
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(params_t, max_norm)
        optimizer.step()
        for p, g in zip(params_w, step, strict=True):
            p.grad.assign(g)
        adam.step()
    for got, want in zip(params_w, params_t, strict=True):
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), **TOL)
    restored = Adam([_wp(p, True) for p in initial], 1.0)
    restored.load_state(adam.state())
    np.testing.assert_array_equal(restored.v[0].numpy(), adam.v[0].numpy())
    assert restored.lr.numpy()[0] == np.float32(1e-2) and restored.step_count.numpy()[0] == 3


def test_scaler_statistics_on_the_device_match_numpy_over_all_batches():
    rng = np.random.default_rng(3)
    moments = [(5.0, 3.0, 7), (-2.0, 0.5, 1), (0.0, 2.0, 300)]
    batches = [rng.normal(loc, scale, size=(rows, 2)).astype(np.float32) for loc, scale, rows in moments]
    scaler = Scaler(2, "cpu")
    for batch in batches[:2]:
        scaler.update(batch)  # host values
    scaler.update(_wp(batches[2]))  # a device array
    seen = np.concatenate(batches).astype(np.float64)
    state = scaler.state()
    np.testing.assert_allclose(state["mean"], seen.mean(0), rtol=1e-12)
    np.testing.assert_allclose(state["var"], seen.var(0), rtol=1e-12)
    assert float(state["count"]) == len(seen)
    x = rng.normal(0, 20, size=(50, 2)).astype(np.float32)
    want = np.clip((x - seen.mean(0)) / seen.std(0), -5.0, 5.0)
    np.testing.assert_allclose(scaler.normalize(_wp(x)).numpy(), want, **TOL)
    restored = Scaler(2, "cpu")
    restored.load_state(state)
    np.testing.assert_array_equal(restored.normalize(_wp(x)).numpy(), scaler.normalize(_wp(x)).numpy())
