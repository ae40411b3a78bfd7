"""The JAX PPO agent against the torch PPO: one update on the same rollout, parameters and shuffles."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")

from gymnasium import spaces  # noqa: E402

from gaussrl.agents.config import PPOConfig  # noqa: E402
from gaussrl.agents.jax.ppo import PPO  # noqa: E402
from gaussrl.agents.jax.ppo_core import ADAM, epoch_permutations  # noqa: E402
from gaussrl.trainer.build import build_ppo  # noqa: E402
from tests.jax.torch_params import assert_params_close, flax_params  # noqa: E402

OBS, ACT = spaces.Box(-1.0, 1.0, (3,)), spaces.Box(-1.0, 1.0, (2,))
CONFIG = PPOConfig(rollouts=8, learning_epochs=2, mini_batches=3, hidden_sizes=(8, 8), observation_normalization=False)
ENVS = 2


def _rollout(rng: np.random.Generator) -> dict[str, np.ndarray]:
    shape = (CONFIG.rollouts, ENVS)
    mean = rng.normal(size=(*shape, 2)).astype(np.float32) * 0.1
    log_std = np.full((*shape, 2), -0.2, np.float32)
    actions = (mean + np.exp(log_std) * rng.normal(size=mean.shape)).astype(np.float32)
    z = (actions - mean) / np.exp(log_std)
    log_prob = np.sum(-0.5 * z * z - log_std - 0.5 * np.log(2 * np.pi), -1, keepdims=True).astype(np.float32)
    return {
        "observations": rng.normal(size=(*shape, 3)).astype(np.float32),
        "actions": actions,
        "log_prob": log_prob,
        "mean_actions": mean,
        "log_std": log_std,
        "rewards": rng.normal(size=(*shape, 1)).astype(np.float32),
        "dones": rng.uniform(size=(*shape, 1)) < 0.1,
    }


def test_one_update_matches_torch(monkeypatch):
    torch.manual_seed(0)
    torch_agent = build_ppo(CONFIG, OBS, ACT, num_envs=ENVS, policy="mlp", device="cpu")
    jax_agent = PPO(OBS, ACT, config=CONFIG, num_envs=ENVS, seed=0)
    params = {"policy": flax_params(torch_agent.policy), "value": flax_params(torch_agent.value)}
    jax_agent.learning = jax_agent.learning._replace(params=params, opt_state=ADAM.init(params))
    rng = np.random.default_rng(3)
    rollout = _rollout(rng)
    next_observations = rng.normal(size=(ENVS, 3)).astype(np.float32)
    for name, array in rollout.items():
        jax_agent.rollout[name][...] = array
        torch_agent.rollout.tensors[name].copy_(torch.from_numpy(array))
    _, key = jax.random.split(jax_agent.key)
    orders = iter(np.asarray(epoch_permutations(key, CONFIG.learning_epochs, CONFIG.rollouts * ENVS)))
    monkeypatch.setattr(torch, "randperm", lambda count, device=None: torch.from_numpy(next(orders).astype(np.int64)))

    want = torch_agent.update(torch.from_numpy(next_observations))
    got = jax_agent.update(next_observations)

    assert got.keys() == want.keys()
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
    assert got["learning_rate"] != CONFIG.learning_rate  # the KL-adaptive rate moved: two epochs compared
    tolerance = {"rtol": 1e-4, "atol": 1e-6}
    assert_params_close(jax_agent.learning.params["policy"], torch_agent.policy, **tolerance)
    assert_params_close(jax_agent.learning.params["value"], torch_agent.value, **tolerance)
