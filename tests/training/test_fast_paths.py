"""The training loop's fast paths compute exactly what the straightforward torch code computes.

Each fast path (NumPy GAE/storage/normalisation, batched rollout
values, the temperature's closed-form gradient, NumPy action rescaling) is compared with the
plain torch formulation it replaces, bit for bit where the arithmetic is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.agents.torch.memory import RunningStandardScaler, TensorStore, compute_gae
from gaussrl.agents.torch.optim import adam, soft_update
from gaussrl.envs import TorchVecEnv, make_vector_env
from gaussrl.trainer.build import build_ppo, build_sac


def _parameters(seed: int) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(8, 3), (8,), (1, 8), (1,), (2,)]
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]


def _gradients(step: int, parameters: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    generator = torch.Generator().manual_seed(100 + step)
    grads: list[torch.Tensor | None] = [torch.randn(p.shape, generator=generator) for p in parameters]
    if step % 3 == 2:
        grads[1] = None  # a parameter without a gradient is skipped, as torch's Adam skips it
    return grads


def test_adam_is_torchs_public_fused_adam_and_runs_step_hooks():
    params = _parameters(0)
    optimizer = adam(params, 3e-3)
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["fused"] is True
    calls = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    optimizer.register_step_post_hook(lambda opt, args, kwargs: calls.append("post"))
    for p, g in zip(params, _gradients(0, params), strict=True):
        p.grad = g
    optimizer.step()
    assert calls == ["pre", "post"]
    assert adam([torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], 1e-3).defaults["foreach"] is True


def test_soft_update_is_the_polyak_average():
    targets, sources = _parameters(0), _parameters(1)
    expected = [t.detach() + 0.25 * (s.detach() - t.detach()) for t, s in zip(targets, sources, strict=True)]
    soft_update(targets, sources, 0.25)
    for got, want in zip(targets, expected, strict=True):
        torch.testing.assert_close(got.detach(), want, rtol=1e-6, atol=1e-7)


def _gae_torch_loop(rewards, values, dones, last_values, *, gamma, lam):
    not_done = 1.0 - dones.to(values.dtype)
    advantages, advantage, next_values = torch.zeros_like(values), torch.zeros_like(last_values), last_values
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * not_done[t] * next_values - values[t]
        advantage = delta + gamma * lam * not_done[t] * advantage
        advantages[t] = advantage
        next_values = values[t]
    return advantages


def test_numpy_gae_equals_the_torch_loop_bit_for_bit():
    generator = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(64, 5, 1, generator=generator), torch.randn(64, 5, 1, generator=generator)
    dones = torch.rand(64, 5, 1, generator=generator) < 0.1
    last = torch.randn(5, 1, generator=generator)
    got = compute_gae(rewards, values, dones, last, discount_factor=0.95, gae_lambda=0.9)
    assert got.dtype == torch.float32
    assert torch.equal(got, _gae_torch_loop(rewards, values, dones, last, gamma=0.95, lam=0.9))


def test_tensor_store_numpy_writes_and_samples_match_torch_indexing():
    specs = {"x": ((3,), torch.float32), "done": ((1,), torch.bool)}
    store = TensorStore(10, 2, specs)
    for i in range(4):
        store.add(x=torch.full((2, 3), float(i)) + torch.tensor([[0.0], [0.5]]), done=torch.tensor([[i % 2 == 0]] * 2))
    assert store.tensors["x"][3, 1, 0] == 3.5 and bool(store.tensors["done"][2, 0, 0])
    torch.manual_seed(3)
    batch = store.sample(6)
    torch.manual_seed(3)
    index = torch.randint(8, (6,))
    for name, tensor in store.tensors.items():
        assert torch.equal(batch[name], tensor.flatten(0, 1)[index])


def test_numpy_normalize_equals_the_torch_formula():
    scaler = RunningStandardScaler(3)
    scaler.update(torch.randn(16, 3) * 4.0 + 1.0)
    x = torch.tensor([[0.1, -30.0, float("nan")], [2.0, 3.0, 40.0]])
    mean, std = scaler.mean.float(), scaler.var.sqrt().clamp_min(1e-8).float()
    torch.testing.assert_close(scaler.normalize(x), ((x - mean) / std).clamp(-5.0, 5.0), rtol=0, atol=0, equal_nan=True)
    with torch.enable_grad():
        graph = scaler.normalize(x.requires_grad_(True))
    assert graph.requires_grad  # inputs that need a gradient keep the torch path


def test_batched_rollout_values_equal_per_step_values():
    torch.manual_seed(0)
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 4), seed=0)
    config = PPOConfig(rollouts=16, mini_batches=2, value_normalization=False)
    agent = build_ppo(config, env.observation_space, env.action_space, num_envs=4, policy="mlp", device="cpu")
    assert agent.batched_values and "values" not in agent.rollout.tensors
    observations = env.reset()
    for _ in range(15):
        step = env.step(agent.act(observations))
        agent.observe(step)
        observations = step.observations
    agent.act(observations)
    with torch.no_grad():
        per_step = torch.stack([agent._values(x, [])[0] for x in agent.rollout.tensors["observations"][:15]])
        batched = agent._targets(observations)["values"][:15]
    # One (T * N)-row product instead of T N-row ones: equal up to the matrix kernel's summation order.
    torch.testing.assert_close(batched, per_step, rtol=1e-6, atol=1e-6)
    env.close()


def test_temperature_gradient_equals_autograd():
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 1), seed=0)
    config = SACConfig(batch_size=8, memory_size=64)
    agent = build_sac(config, env.observation_space, env.action_space, num_envs=1, device="cpu")
    for n in (8, 100, 255):
        log_prob = torch.randn(n, 1) * 3.0
        coefficient = agent.log_entropy_coefficient.detach().clone().requires_grad_(True)
        (-(coefficient * (log_prob + agent.target_entropy)).mean()).backward()
        before = agent.log_entropy_coefficient.detach().clone()
        agent.entropy_optimizer.zero_grad()
        agent._temperature_step(log_prob)
        assert torch.equal(agent.log_entropy_coefficient.grad, coefficient.grad)
        assert not torch.equal(agent.log_entropy_coefficient.detach(), before)
    env.close()


def test_action_rescaling_equals_float64_clip_and_scale():
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 3), seed=0)
    actions = torch.tensor([[-1.7], [0.123456789], [float("nan")]])
    raw = actions.to(torch.float64).numpy()
    want = (np.clip(raw, -1.0, 1.0) * 2.0).astype(np.float32)
    np.testing.assert_array_equal(env.to_env_actions(actions), want)
    np.testing.assert_array_equal(env.to_env_actions(actions.to(torch.float64)), want)
    env.close()


def _ppo_run(batched_kl: bool) -> tuple[list[dict[str, float]], list[torch.Tensor]]:
    torch.manual_seed(0)
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=0)
    config = PPOConfig(rollouts=32, mini_batches=4, learning_epochs=3, learning_rate=3e-3)
    agent = build_ppo(config, env.observation_space, env.action_space, num_envs=2, policy="mlp", device="cpu")
    assert agent.batched_kl
    agent.batched_kl = batched_kl
    observations, history = env.reset(), []
    for _ in range(96):
        step = env.step(agent.act(observations))
        metrics = agent.observe(step)
        observations = step.observations
        if metrics:
            history.append(metrics)
    env.close()
    return history, [p.detach().clone() for p in agent.policy.parameters()]


def test_epoch_batched_kl_equals_per_minibatch_kl():
    batched, batched_params = _ppo_run(True)
    per_minibatch, params = _ppo_run(False)
    assert len(batched) == 3 and batched == per_minibatch  # KL metric and learning rates, exactly
    assert all(torch.equal(a, b) for a, b in zip(batched_params, params, strict=True))


@pytest.mark.parametrize("max_norm", [0.05, 0.5, 100.0])
def test_clip_grad_norm_equals_torch_clip_grad_norm(max_norm):
    from gaussrl.agents.torch.optim import clip_grad_norm

    ours, theirs = _parameters(2), _parameters(2)
    for step, params in enumerate((ours, theirs)):
        for p, g in zip(params, _gradients(2, params), strict=True):
            p.grad = g
        (clip_grad_norm if step == 0 else torch.nn.utils.clip_grad_norm_)(params, max_norm)
    for a, b in zip(ours, theirs, strict=True):
        assert (a.grad is None and b.grad is None) or torch.equal(a.grad, b.grad)
