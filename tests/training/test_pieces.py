"""Unit tests of the training pieces: GAE, KL, running statistics, configs, env wrapper, recurrent cores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.agents.torch.memory import RunningStandardScaler, compute_gae
from gaussrl.agents.torch.recurrent import RecurrentCore
from gaussrl.envs import TorchVecEnv, make_vector_env
from gaussrl.trainer.build import build_ppo


def test_gae_matches_hand_computed_case():
    # T=3, one env, episode ends after t=1. gamma=0.9, lambda=0.8.
    rewards = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    values = torch.tensor([0.5, 1.0, 1.5]).view(3, 1, 1)
    dones = torch.tensor([False, True, False]).view(3, 1, 1)
    last = torch.tensor([[2.0]])
    got = compute_gae(rewards, values, dones, last, discount_factor=0.9, gae_lambda=0.8).view(-1)
    d2 = 3.0 + 0.9 * 2.0 - 1.5  # bootstraps from last value
    d1 = 2.0 - 1.0  # done: no bootstrap
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    a2 = d2
    a1 = d1  # done cuts the trace
    a0 = d0 + 0.9 * 0.8 * a1
    np.testing.assert_allclose(got.numpy(), [a0, a1, a2], rtol=1e-6)


def test_ppo_kl_is_the_closed_form_gaussian_kl():
    torch.manual_seed(0)
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=0)
    agent = build_ppo(
        PPOConfig(rollouts=8, mini_batches=2),
        env.observation_space,
        env.action_space,
        num_envs=2,
        policy="mlp",
        device="cpu",
    )
    observations = env.reset()
    agent.policy.act({"observations": observations}, role="policy")
    old_mean = torch.tensor([[0.3], [-1.2]])
    old_log_std = torch.tensor([[-0.4], [0.2]])
    got = agent.policy.get_kl_divergence(old_mean, old_log_std, role="policy")
    new_mean, new_log_std = agent.policy.distribution().loc, agent.policy.distribution().scale.log()
    m0, s0 = old_mean.double(), old_log_std.double().exp()
    m1, s1 = new_mean.double(), new_log_std.double().exp()
    want = torch.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - 0.5
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    oracle = torch.distributions.kl_divergence(torch.distributions.Normal(m0, s0), torch.distributions.Normal(m1, s1))
    np.testing.assert_allclose(got.detach().numpy(), oracle.detach().numpy(), rtol=1e-5, atol=1e-6)
    env.close()


def test_running_scaler_matches_numpy_and_inverts():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(50, 4))
    scaler = RunningStandardScaler(4)
    for chunk in np.split(data, 5):
        scaler.update(torch.as_tensor(chunk, dtype=torch.float32))
    np.testing.assert_allclose(scaler.mean.numpy(), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(scaler.var.numpy(), data.var(0), rtol=1e-4)
    x = torch.as_tensor(data[:3], dtype=torch.float32)
    torch.testing.assert_close(scaler.denormalize(scaler.normalize(x)), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (PPOConfig, {"ratio_clip": 1.5}, r"ratio_clip=1.5 is outside \(0.0, 1.0\); .*\(the default is 0.2\)"),
        (PPOConfig, {"discount_factor": "0.9"}, r"discount_factor='0.9' is outside \[0.0, 1.0\]"),
        (PPOConfig, {"gae_lambda": float("nan")}, r"gae_lambda=nan is outside .*\(the default is 0.95\)"),
        (PPOConfig, {"rollouts": 0}, r"rollouts=0 must be a positive integer .*\(the default is 512\)"),
        (PPOConfig, {"learning_rate_scheduler": "cosine"}, "learning_rate_scheduler='cosine' must be"),
        (PPOConfig, {"hidden_sizes": ()}, "hidden_sizes=.* must be a non-empty sequence"),
        (SACConfig, {"polyak": 0.0}, r"polyak=0.0 is outside \(0.0, 1.0\]; .*\(the default is 0.005\)"),
        (SACConfig, {"batch_size": 512, "memory_size": 100}, "batch_size=512 exceeds memory_size=100"),
        (SACConfig, {"learning_starts": -1}, "learning_starts=-1 must be a non-negative integer"),
    ],
)
def test_invalid_config_values_are_rejected(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_config_is_frozen_and_keyword_only():
    config = PPOConfig()
    with pytest.raises(AttributeError):
        config.rollouts = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        PPOConfig(16)  # type: ignore[misc]
    with pytest.raises(TypeError, match="clip_predicted_values=1 must be True or False"):
        PPOConfig(clip_predicted_values=1)  # type: ignore[arg-type]


def test_rollout_that_does_not_split_is_a_clear_error():
    with pytest.raises(ValueError, match="mini_batches=64 exceeds the 32 samples"):
        PPOConfig(rollouts=16, mini_batches=64).check_batch(2, recurrent=False)
    with pytest.raises(ValueError, match="sequence_length=16 must divide rollouts=100"):
        PPOConfig(rollouts=100, sequence_length=16).check_batch(2, recurrent=True)


def test_env_rescales_actions_and_separates_truncation():
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=3)
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    np.testing.assert_allclose(env.to_env_actions(torch.tensor([[0.5], [7.0]])).ravel(), [1.0, 2.0])
    first = env.reset()
    for t in range(200):
        step = env.step(torch.zeros(2, 1))
        assert not step.terminated.any()
        if t < 199:
            assert not step.truncated.any()
            torch.testing.assert_close(step.final_observations, step.observations)
    assert step.truncated.all()
    assert not torch.equal(step.final_observations, step.observations)
    assert [length for _, length in env.pop_episodes()] == [200, 200]
    assert env.episodes.tolist() == [1, 1]
    again = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=3)
    torch.testing.assert_close(again.reset(), first)
    env.close()
    again.close()


def test_no_velocity_pendulum_observes_cos_sin_only():
    env = TorchVecEnv(make_vector_env("gaussrl/PendulumNoVel-v1", 2), seed=0)
    observations = env.reset()
    assert observations.shape == (2, 2)
    torch.testing.assert_close(observations.pow(2).sum(-1), torch.ones(2))
    env.close()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_recurrent_sequences_equal_step_by_step_rollout(cell):
    torch.manual_seed(0)
    core = RecurrentCore(3, cell, 8, 2)
    batch, length = 4, 6
    x = torch.randn(batch, length, 3)
    done = torch.zeros(batch, length, dtype=torch.bool)
    done[1, 2] = done[3, 0] = done[0, 5] = True
    init = [torch.randn(2, batch, 8) for _ in core.sizes(batch)]
    features, _ = core(x.reshape(batch * length, 3), init, done.reshape(-1, 1))
    states, expected = init, []
    for t in range(length):
        out, states = core(x[:, t], states)
        expected.append(out)
        keep = (~done[:, t]).float().view(1, batch, 1)
        states = [s * keep for s in states]
    torch.testing.assert_close(features.view(batch, length, 8), torch.stack(expected, 1), rtol=1e-5, atol=1e-6)


def test_ppo_stores_the_exact_sampled_action_and_its_log_prob():
    torch.manual_seed(1)
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=0)
    config = PPOConfig(rollouts=8, mini_batches=2, initial_log_std=1.5)
    agent = build_ppo(config, env.observation_space, env.action_space, num_envs=2, policy="mlp", device="cpu")
    observations = env.reset()
    sampled = []
    for _ in range(5):
        actions = agent.act(observations)
        sampled.append(actions.clone())
        step = env.step(actions)
        agent.observe(step)
        observations = step.observations
    stored = agent.rollout.tensors
    torch.testing.assert_close(stored["actions"][:5], torch.stack(sampled))
    assert stored["actions"][:5].abs().max() > 1.0  # unclipped: the env boundary clips, not the agent
    _, outputs = agent.policy.act(
        {
            "observations": stored["observations"][:5].reshape(10, -1),
            "taken_actions": stored["actions"][:5].reshape(10, 1),
        }
    )
    torch.testing.assert_close(outputs["log_prob"], stored["log_prob"][:5].reshape(10, 1), rtol=1e-5, atol=1e-5)
    env.close()


def test_episode_seed_is_deterministic_and_distinct():
    from gaussrl.envs import episode_seed

    seeds = {episode_seed(0, i, e) for i in range(3) for e in range(3)}
    assert len(seeds) == 9
    assert episode_seed(5, 1, 2) == episode_seed(5, 1, 2)
    assert all(0 <= s < 2**31 for s in seeds)
    assert not math.isnan(float(episode_seed(1, 0, 0)))


def test_linear_learning_rate_schedule_decays_per_update():
    torch.manual_seed(0)
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=0)
    config = PPOConfig(rollouts=8, mini_batches=2, learning_epochs=1, learning_rate_scheduler="linear")
    with pytest.raises(ValueError, match="needs total_updates"):
        build_ppo(config, env.observation_space, env.action_space, num_envs=2, policy="mlp", device="cpu")
    agent = build_ppo(
        config, env.observation_space, env.action_space, num_envs=2, policy="mlp", device="cpu", total_timesteps=64
    )
    observations, rates = env.reset(), []
    for _ in range(32):
        step = env.step(agent.act(observations))
        metrics = agent.observe(step)
        observations = step.observations
        if metrics:
            rates.append(metrics["learning_rate"])
    np.testing.assert_allclose(rates, [1e-3, 0.75e-3, 0.5e-3, 0.25e-3])
    env.close()
