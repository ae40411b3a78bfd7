"""The pure JAX PPO core against hand-computed GAE and against the torch PPO agent (same batch, same parameters)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
torch = pytest.importorskip("torch")

import jax.numpy as jnp  # noqa: E402
from gymnasium import spaces  # noqa: E402

from gaussrl.agents.config import PPOConfig  # noqa: E402
from gaussrl.agents.jax import networks as jax_networks  # noqa: E402
from gaussrl.agents.jax import normalization, ppo_core  # noqa: E402
from gaussrl.agents.torch import networks as torch_networks  # noqa: E402
from gaussrl.agents.torch.ppo import PPO  # noqa: E402
from gaussrl.core.errors import ConfigError  # noqa: E402

BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)
OBS = 3


def test_gae_hand_computed():
    # gamma 0.9, lambda 0.8; the episode ends after step 1, so step 1 neither bootstraps nor carries A_2.
    # A_2 = 3 + 0.9 * 2 - 1.5 = 3.3; A_1 = 2 - 1 = 1; A_0 = (1 + 0.9 * 1 - 0.5) + 0.72 * 1 = 2.12.
    rewards = jnp.asarray([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    values = jnp.asarray([0.5, 1.0, 1.5]).reshape(3, 1, 1)
    dones = jnp.asarray([False, True, False]).reshape(3, 1, 1)
    got = ppo_core.compute_gae(rewards, values, dones, jnp.asarray([[2.0]]), discount_factor=0.9, gae_lambda=0.8)
    np.testing.assert_allclose(np.asarray(got).ravel(), [2.12, 1.0, 3.3], rtol=1e-6)


def test_gae_lambda_one_is_the_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=(2, 6, 2, 1)).astype(np.float32)
    last = rng.normal(size=(2, 1)).astype(np.float32)
    got = ppo_core.compute_gae(
        jnp.asarray(rewards),
        jnp.asarray(values),
        jnp.zeros((6, 2, 1), bool),
        jnp.asarray(last),
        discount_factor=0.9,
        gae_lambda=1.0,
    )
    returns = last.astype(np.float64)
    want = np.empty((6, 2, 1))
    for t in range(5, -1, -1):
        returns = rewards[t] + 0.9 * returns
        want[t] = returns - values[t]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_and_termination_does_not():
    rewards = jnp.asarray([[1.0], [1.0], [1.0]])
    final_values = jnp.asarray([[10.0], [10.0], [10.0]])
    terminated = jnp.asarray([[False], [True], [True]])
    truncated = jnp.asarray([[True], [False], [True]])
    got = ppo_core.bootstrap_rewards(rewards, final_values, terminated, truncated, discount_factor=0.5)
    np.testing.assert_allclose(np.asarray(got).ravel(), [6.0, 1.0, 1.0])


def test_linear_schedule_needs_total_updates():
    with pytest.raises(ConfigError, match="total_updates"):
        ppo_core.make_update(None, PPOConfig(learning_rate_scheduler="linear"))


def _twins(config, seed=0):
    """A torch PPO agent and JAX models holding the same parameters."""
    torch.manual_seed(seed)
    policy = torch_networks.GaussianMLPPolicy(OBS, BOX, hidden_sizes=config.hidden_sizes, initial_log_std=-0.3)
    value = torch_networks.ValueMLP(OBS, hidden_sizes=config.hidden_sizes)
    jax_policy = jax_networks.GaussianMLPPolicy(OBS, BOX, hidden_sizes=config.hidden_sizes)
    jax_value = jax_networks.ValueMLP(OBS, hidden_sizes=config.hidden_sizes)
    for model, twin in ((jax_policy, policy), (jax_value, value)):
        model.init_state_dict(role="policy" if model is jax_policy else "value", key=seed)
        model.state_dict = model.state_dict.replace(params=jax_networks.params_from_torch(twin.state_dict()))
    return policy, value, ppo_core.PPOModels(jax_policy, jax_value)


def _rollout(policy, steps, envs, seed=0):
    """A rollout sampled from the torch policy: consistent actions, log-probs, means and log-stds."""
    rng = np.random.default_rng(seed)
    observations = torch.as_tensor(rng.normal(size=(steps * envs, OBS)), dtype=torch.float32)
    with torch.no_grad():
        actions, outputs = policy.act({"observations": observations}, role="policy")
    shape = (steps, envs)
    return {
        "observations": observations.view(*shape, OBS),
        "actions": actions.view(*shape, -1),
        "log_prob": outputs["log_prob"].view(*shape, 1),
        "mean_actions": outputs["mean_actions"].view(*shape, -1),
        "log_std": outputs["log_std"].expand_as(actions).reshape(*shape, -1),
        "rewards": torch.as_tensor(rng.normal(size=(*shape, 1)), dtype=torch.float32),
        "dones": torch.as_tensor(rng.random(size=(*shape, 1)) < 0.1),
    }


def _jax_rollout(data):
    return ppo_core.Rollout(**{k: jnp.asarray(v.numpy()) for k, v in data.items()})


CONFIGS = {
    "defaults": PPOConfig(rollouts=16, learning_epochs=3, mini_batches=4, hidden_sizes=(16, 16)),
    "uneven_minibatches_clipped_values_entropy": PPOConfig(
        rollouts=20,
        learning_epochs=2,
        mini_batches=8,
        hidden_sizes=(8,),
        clip_predicted_values=True,
        entropy_loss_scale=0.01,
        learning_rate_scheduler="constant",
        grad_norm_clip=0.05,
    ),
    "linear_kl_threshold": PPOConfig(
        rollouts=16,
        learning_epochs=4,
        mini_batches=2,
        learning_rate_scheduler="linear",
        kl_threshold=1e-4,
        learning_rate=3e-3,
        value_normalization=False,
    ),
}


def _torch_agent(config, envs):
    policy, value, models = _twins(config)
    agent = PPO(policy=policy, value=value, config=config, num_envs=envs, total_updates=5)
    data = _rollout(policy, config.rollouts, envs)
    for name, tensor in data.items():
        agent.rollout.tensors[name].copy_(tensor)
    return agent, models, data


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_one_update_matches_torch(name, monkeypatch):
    config, envs = CONFIGS[name], 3
    agent, models, data = _torch_agent(config, envs)
    state = ppo_core.init_state(models, config)
    update = ppo_core.make_update(models, config, total_updates=5)
    next_observations = torch.as_tensor(np.random.default_rng(1).normal(size=(envs, OBS)), dtype=torch.float32)
    key = jax.random.key(3, impl="philox4x32")
    # The torch agent shuffles with torch.randperm; give it the JAX update's orders, epoch by epoch.
    orders = iter(np.asarray(ppo_core.epoch_permutations(key, config.learning_epochs, config.rollouts * envs)))
    monkeypatch.setattr(torch, "randperm", lambda n, device=None: torch.as_tensor(np.array(next(orders))))
    want = agent.update(next_observations)
    state, got = update(state, _jax_rollout(data), jnp.asarray(next_observations.numpy()), key)
    for metric in ("policy_loss", "value_loss", "entropy", "kl", "learning_rate", "policy_std"):
        np.testing.assert_allclose(float(got[metric]), want[metric], rtol=2e-4, atol=1e-6, err_msg=metric)
    # Adam divides by the root of the squared gradients, so float32 noise on a near-zero gradient moves a
    # weight by up to about 1% of one step (lr 3e-3): hence atol 2e-5 on the parameters.
    for role, model in (("policy", agent.policy), ("value", agent.value)):
        want_params = jax_networks.params_from_torch(model.state_dict())
        jax.tree_util.tree_map(
            lambda g, w: np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=2e-5),
            state.params[role],
            want_params,
        )
    assert int(state.updates) == 1
    if config.value_normalization:
        np.testing.assert_allclose(np.asarray(state.value_stats.mean), agent.value_scaler.mean.numpy(), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(state.value_stats.var), agent.value_scaler.var.numpy(), rtol=1e-5)


def test_loss_and_gradient_match_torch():
    config = dataclasses.replace(CONFIGS["uneven_minibatches_clipped_values_entropy"], hidden_sizes=(16, 16))
    agent, models, data = _torch_agent(config, envs=2)
    rng = np.random.default_rng(2)
    count = config.rollouts * 2
    batch = {k: v.reshape(count, *v.shape[2:]) for k, v in data.items() if k not in ("rewards", "dones")}
    batch["values"] = torch.as_tensor(rng.normal(size=(count, 1)), dtype=torch.float32)
    batch["returns"] = torch.as_tensor(rng.normal(size=(count, 1)), dtype=torch.float32)
    batch["advantages"] = torch.as_tensor(rng.normal(size=(count, 1)), dtype=torch.float32)
    # Move the current policy away from the rollout's so that ratios leave the clip range.
    with torch.no_grad():
        for p in agent.policy.parameters():
            p.add_(0.3 * torch.randn_like(p))
    params = {
        "policy": jax_networks.params_from_torch(agent.policy.state_dict()),
        "value": jax_networks.params_from_torch(agent.value.state_dict()),
    }
    loss, metrics = agent._loss(batch)
    loss.backward()
    samples = ppo_core.Samples(
        **{k: jnp.asarray(v.numpy()) for k, v in batch.items()}, weights=jnp.ones((count, 1), jnp.float32)
    )
    (got_loss, got_metrics), grads = jax.value_and_grad(ppo_core.ppo_loss, has_aux=True)(
        params, samples, models, config
    )
    np.testing.assert_allclose(float(got_loss), float(loss.detach()), rtol=1e-5, atol=1e-6)
    for name in ("policy_loss", "value_loss", "entropy"):
        np.testing.assert_allclose(float(got_metrics[name]), float(metrics[name]), rtol=1e-5, atol=1e-6)
    ratio = np.exp(
        np.asarray(
            models.policy.act(
                {"observations": samples.observations, "taken_actions": samples.actions}, params=params["policy"]
            )[1]["log_prob"]
        )
        - batch["log_prob"].numpy()
    )
    assert np.any(np.abs(ratio - 1.0) > config.ratio_clip)  # the clipped branch is exercised
    for role, model in (("policy", agent.policy), ("value", agent.value)):
        want = jax_networks.params_from_torch({k: p.grad for k, p in model.named_parameters()})
        jax.tree_util.tree_map(
            lambda g, w: np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-6),
            grads[role],
            want,
        )


def test_padding_has_no_weight():
    config = CONFIGS["uneven_minibatches_clipped_values_entropy"]
    _, _, models = _twins(config)
    rng = np.random.default_rng(0)
    fields = {
        "observations": (5, OBS),
        "actions": (5, 2),
        "log_prob": (5, 1),
        "mean_actions": (5, 2),
        "log_std": (5, 2),
        "values": (5, 1),
        "returns": (5, 1),
        "advantages": (5, 1),
    }
    arrays = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in fields.items()}
    params = {"policy": models.policy.state_dict.params, "value": models.value.state_dict.params}
    full = ppo_core.ppo_loss(params, ppo_core.Samples(**arrays, weights=jnp.ones((5, 1))), models, config)[0]
    padded = {k: jnp.concatenate([v, 100.0 * jnp.ones_like(v[:2])]) for k, v in arrays.items()}
    weights = jnp.asarray([[1.0]] * 5 + [[0.0]] * 2)
    np.testing.assert_allclose(
        float(ppo_core.ppo_loss(params, ppo_core.Samples(**padded, weights=weights), models, config)[0]),
        float(full),
        rtol=1e-6,
    )


def test_running_stats_match_numpy():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=3.0, scale=2.0, size=(n, 2)) for n in (5, 17, 1)]
    stats = normalization.stats_init(2)
    for batch in batches:
        stats = normalization.stats_update(stats, jnp.asarray(batch, jnp.float32))
    data = np.concatenate(batches)
    np.testing.assert_allclose(np.asarray(stats.mean), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(stats.var), data.var(0), rtol=1e-5)
    assert float(stats.total) == 23.0
    x = jnp.asarray([[3.0, 100.0]])
    np.testing.assert_allclose(
        np.asarray(normalization.normalize(stats, x)), [[(3.0 - data.mean(0)[0]) / data.std(0)[0], 5.0]], rtol=1e-5
    )
