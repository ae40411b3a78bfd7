"""Reward normalisation by the running std of the discounted return, against a direct NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest

from gaussrl.agents.config import PPOConfig
from gaussrl.agents.normalization import RETURN_CLIP, ReturnNormalizer
from gaussrl.core.errors import ConfigError
from gaussrl.trainer.loop import TrainConfig
from tests.training.run_helpers import cli_error


def _oracle(rewards: np.ndarray, dones: np.ndarray, discount: float) -> np.ndarray:
    """Each step: G = discount * G + r per env; std of every G so far (population); clip(r / std, +-10)."""
    steps, envs = rewards.shape
    returns, seen, out = np.zeros(envs), [], np.zeros_like(rewards)
    for t in range(steps):
        returns = discount * returns + rewards[t]
        seen.extend(returns)
        std = max(np.std(np.array(seen)), 1e-8)
        out[t] = np.clip(rewards[t] / std, -RETURN_CLIP, RETURN_CLIP)
        returns = np.where(dones[t], 0.0, returns)
    return out


@pytest.mark.parametrize("envs", [1, 3])
def test_scaled_rewards_match_the_direct_computation(envs):
    rng = np.random.default_rng(0)
    rewards = rng.normal(5.0, 20.0, size=(300, envs))
    rewards[150, 0] = 1e6  # clipped at +10 whatever the statistics
    dones = rng.random((300, envs)) < 0.02
    scaler = ReturnNormalizer(envs, 0.97)
    got = np.stack([scaler(rewards[t][:, None], dones[t][:, None])[:, 0] for t in range(300)])
    np.testing.assert_allclose(got, _oracle(rewards, dones, 0.97), rtol=1e-10, atol=1e-12)
    assert got[150, 0] == RETURN_CLIP


def test_float32_rewards_stay_float32_and_the_state_round_trips():
    scaler = ReturnNormalizer(2, 0.99)
    for value in (1.0, -3.0, 2.5):
        out = scaler(np.full((2, 1), value, np.float32), np.zeros((2, 1), bool))
    assert out.dtype == np.float32
    copy = ReturnNormalizer(2, 0.99)
    copy.load_state(scaler.state())
    step = np.array([[4.0], [-1.0]], np.float32), np.array([[True], [False]])
    np.testing.assert_array_equal(copy(*step), scaler(*step))
    np.testing.assert_array_equal(copy.returns, [0.0, scaler.returns[1]])


def test_the_warp_backend_refuses_it_before_anything_runs():
    with pytest.raises(
        ConfigError, match=r"--ppo.reward-normalization is implemented by the torch and jax agents, not"
    ):
        TrainConfig(backend="warp", ppo=PPOConfig(reward_normalization=True))
    assert TrainConfig(backend="warp", algo="sac", ppo=PPOConfig(reward_normalization=True)).backend == "warp"


def test_the_compiled_trainer_refuses_it_before_anything_runs(capsys, tmp_path):
    pytest.importorskip("gymnax")
    argv = ["train", "--backend", "jax", "--env", "gymnax/Pendulum-v1", "--ppo.reward-normalization"]
    message = cli_error(capsys, [*argv, "--out", str(tmp_path / "run"), "--no-progress"])
    assert message.startswith("gaussrl: error: --ppo.reward-normalization is not part of the compiled gymnax trainer")
    assert not (tmp_path / "run").exists()
