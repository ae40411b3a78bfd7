"""Export of the deterministic policy: the TorchScript module acts as the trainer's evaluation does."""

from __future__ import annotations

import pytest
import torch

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.envs import TorchVecEnv, make_vector_env
from gaussrl.io.export import DeterministicPolicy, export_jit, export_onnx
from gaussrl.trainer.build import build_ppo, build_sac


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_jit_export_matches_deterministic_evaluation(tmp_path, algo):
    torch.manual_seed(0)
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 3), seed=0)
    spaces = (env.observation_space, env.action_space)
    if algo == "ppo":
        agent = build_ppo(PPOConfig(rollouts=8, mini_batches=2), *spaces, num_envs=3, policy="mlp", device="cpu")
        agent.act(env.reset() * 3.0)  # gives the observation normaliser non-trivial statistics
        scaler = agent.obs_scaler
    else:
        agent = build_sac(SACConfig(hidden_sizes=(16,)), *spaces, num_envs=3, device="cpu")
        scaler = agent.obs_scaler
    observations = env.reset()
    actions, _ = agent.act_eval(observations, [], deterministic=True)
    want = torch.as_tensor(env.to_env_actions(actions))
    export_jit(DeterministicPolicy(agent.policy, env.env_action_space, scaler), tmp_path / "policy.pt")
    loaded = torch.jit.load(str(tmp_path / "policy.pt"))
    torch.testing.assert_close(loaded(observations), want, rtol=1e-5, atol=1e-5)
    env.close()


def test_recurrent_export_is_refused_with_a_reason():
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=0)
    agent = build_ppo(
        PPOConfig(rollouts=16, mini_batches=2),
        env.observation_space,
        env.action_space,
        num_envs=2,
        policy="gru",
        device="cpu",
    )
    with pytest.raises(NotImplementedError, match="exporting recurrent policies is not supported"):
        DeterministicPolicy(agent.policy, env.env_action_space)
    env.close()


def test_onnx_export_needs_onnx(tmp_path):
    pytest.importorskip("onnx")
    env = TorchVecEnv(make_vector_env("Pendulum-v1", 2), seed=0)
    agent = build_ppo(
        PPOConfig(rollouts=8, mini_batches=2),
        env.observation_space,
        env.action_space,
        num_envs=2,
        policy="mlp",
        device="cpu",
    )
    export_onnx(DeterministicPolicy(agent.policy, env.env_action_space, agent.obs_scaler), tmp_path / "p.onnx")
    assert (tmp_path / "p.onnx").stat().st_size > 0
    env.close()
