"""Shared by the 2-rank tests and their worker: small configs, synthetic batches and parameter digests."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.envs.gymnasium import Step

TINY_PPO = PPOConfig(rollouts=100, learning_epochs=2, mini_batches=4, hidden_sizes=(16, 16), reward_normalization=True)
"""Reward normalisation on, so that the merge of the reward scale's statistics is in the digests and the resumes."""
TINY_SAC = SACConfig(batch_size=32, memory_size=2000, learning_starts=100, random_timesteps=100, hidden_sizes=(16, 16))
GRAD_PPO = PPOConfig(rollouts=8, learning_epochs=1, mini_batches=1, hidden_sizes=(16, 16))
GRAD_SAC = SACConfig(
    batch_size=16, memory_size=64, learning_starts=1, random_timesteps=0, hidden_sizes=(16, 16), learn_entropy=False
)
ENVS = 3
"""Environments per rank in the gradient cases (the union has 2 * ENVS)."""


def digest(tensors: list[torch.Tensor]) -> str:
    """SHA-256 of the tensors' bytes: equal digests mean bit-identical parameters."""
    sha = hashlib.sha256()
    for tensor in tensors:
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


def agent_parameters(agent) -> list[torch.Tensor]:
    """Every learned tensor of a PPO or SAC agent (and PPO's running statistics)."""
    if hasattr(agent, "value"):  # with the merged statistics of the observations and of the reward scale
        moments = agent.reward_scaler.moments if agent.reward_scaler is not None else None
        statistics = [agent.obs_scaler.mean, agent.obs_scaler.var] if agent.obs_scaler is not None else []
        if moments is not None:
            statistics += [torch.from_numpy(moments.mean), torch.from_numpy(moments.var)]
        return [*agent.policy.parameters(), *agent.value.parameters(), *statistics]
    modules = [agent.policy, *agent.critics, *agent.target_critics]
    return [p for m in modules for p in m.parameters()] + [agent.log_entropy_coefficient]


def ppo_rollout(envs: slice) -> dict[str, np.ndarray]:
    """A synthetic PPO rollout of 2 * ENVS environments (the same on every rank); ``envs`` selects columns."""
    rng = np.random.default_rng(7)
    steps, total = GRAD_PPO.rollouts, 2 * ENVS
    data = {
        "observations": rng.normal(size=(steps, total, 3)) * [1.0, 2.0, 5.0] + [0.5, -1.0, 2.0],
        "actions": rng.normal(size=(steps, total, 1)),
        "log_prob": rng.normal(size=(steps, total, 1)) - 1.0,
        "mean_actions": rng.normal(size=(steps, total, 1)) * 0.1,
        "log_std": np.zeros((steps, total, 1)),
        "rewards": rng.normal(size=(steps, total, 1)) * 3.0 - 5.0,
        "dones": rng.random(size=(steps, total, 1)) < 0.1,
        "next_observations": rng.normal(size=(1, total, 3)),
    }
    return {k: v[:, envs] for k, v in data.items()}


def ppo_gradients(agent, envs: slice) -> list[np.ndarray]:
    """Fill ``agent``'s rollout with ``ppo_rollout(envs)``, update once, return the gradients the optimizer stepped.

    The observation statistics are fed the raw observations, so that their cross-rank merge is exercised.
    """
    data = {k: torch.from_numpy(v.astype(np.float32) if v.dtype != bool else v) for k, v in ppo_rollout(envs).items()}
    for t in range(GRAD_PPO.rollouts):
        agent.obs_scaler.update(data["observations"][t])
        agent.rollout.add(**{k: v[t] for k, v in data.items() if k != "next_observations"})
    captured: list[np.ndarray] = []
    step = agent.optimizer.step

    def capture(*args, **kwargs):
        captured.extend(p.grad.detach().clone().numpy() for g in agent.optimizer.param_groups for p in g["params"])
        return step(*args, **kwargs)

    agent.optimizer.step = capture
    agent.update(data["next_observations"][0])
    return captured


def sac_batch(rows: slice) -> dict[str, torch.Tensor]:
    """A synthetic SAC minibatch of 2 * batch_size transitions (the same on every rank); ``rows`` selects."""
    rng = np.random.default_rng(11)
    n = 2 * GRAD_SAC.batch_size
    data = {
        "observations": rng.normal(size=(n, 3)),
        "actions": rng.uniform(-1.0, 1.0, size=(n, 1)),
        "rewards": rng.normal(size=(n, 1)),
        "next_observations": rng.normal(size=(n, 3)),
        "terminated": (rng.random(size=(n, 1)) < 0.2).astype(np.float64),
    }
    return {k: torch.from_numpy(v[rows].astype(np.float32)) for k, v in data.items()}


def sac_gradients(agent, rows: slice) -> list[np.ndarray]:
    """One SAC update on ``sac_batch(rows)`` with a near-deterministic policy; the critic and policy gradients.

    The policy's log-std head is set far below the clamp (std = e^-20) and alpha to 1e-12, so that the
    sampled actions and their log-probabilities do not depend on the ranks' different noise.
    """
    last = [m for m in agent.policy.modules() if isinstance(m, torch.nn.Linear)][-1]
    actions = agent.policy.num_actions
    with torch.no_grad():
        last.weight[actions:] = 0.0
        last.bias[actions:] = -30.0
        agent.log_entropy_coefficient.fill_(np.log(1e-12))
    batch = sac_batch(rows)
    agent.memory.sample = lambda size: batch
    captured: list[np.ndarray] = []
    for optimizer in (agent.critic_optimizer, agent.policy_optimizer):
        step = optimizer.step

        def capture(*args, _step=step, _optimizer=optimizer, **kwargs):
            for group in _optimizer.param_groups:
                captured.extend(p.grad.detach().clone().numpy() for p in group["params"] if p.grad is not None)
            return _step(*args, **kwargs)

        optimizer.step = capture
    agent.update()
    return captured


__all__ = ["ENVS", "GRAD_PPO", "GRAD_SAC", "TINY_PPO", "TINY_SAC", "Step", "digest"]
