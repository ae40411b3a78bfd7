"""Build the default agents (PPO or SAC with gaussrl's default networks) for an environment; torch only."""

from __future__ import annotations

import torch
from gymnasium import spaces

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.agents.torch.distributed import World
from gaussrl.agents.torch.networks import QMLP, GaussianMLPPolicy, ValueMLP
from gaussrl.agents.torch.ppo import PPO
from gaussrl.agents.torch.recurrent import Cell, RecurrentGaussianPolicy, RecurrentValue
from gaussrl.agents.torch.sac import SAC
from gaussrl.models.torch import Model
from gaussrl.trainer.config import PolicyKind


def build_ppo(
    config: PPOConfig,
    observation_space: spaces.Space,  # type: ignore[type-arg]
    action_space: spaces.Box,
    *,
    num_envs: int,
    policy: PolicyKind,
    device: str | torch.device,
    total_timesteps: int | None = None,
    world: World | None = None,
) -> PPO:
    """PPO with an MLP or recurrent (RNN/GRU/LSTM) policy and value.

    Args:
        config: PPO hyperparameters (including network sizes).
        observation_space: Single-environment observation space.
        action_space: The normalised action Box.
        num_envs: Number of parallel environments.
        policy: ``"mlp"``, ``"rnn"``, ``"gru"`` or ``"lstm"``.
        device: Device.
        total_timesteps: Environment steps of this rank (for the "linear" learning-rate schedule).
        world: The ranks of a data-parallel run; None: one process.

    Returns:
        The agent.
    """
    actor: Model
    critic: Model
    if policy == "mlp":
        actor = GaussianMLPPolicy(
            observation_space,
            action_space,
            hidden_sizes=config.hidden_sizes,
            activation=config.activation,
            initialization=config.initialization,
            initial_log_std=config.initial_log_std,
            device=device,
        )
        critic = ValueMLP(
            observation_space,
            hidden_sizes=config.hidden_sizes,
            activation=config.activation,
            initialization=config.initialization,
            device=device,
        )
    else:
        actor, critic = _recurrent_pair(
            config, observation_space, action_space, num_envs=num_envs, cell=policy, device=device
        )
    per_update = config.rollouts * num_envs
    total_updates = -(-total_timesteps // per_update) if total_timesteps else None
    return PPO(policy=actor, value=critic, config=config, num_envs=num_envs, total_updates=total_updates, world=world)


def _recurrent_pair(
    config: PPOConfig,
    observation_space: spaces.Space,  # type: ignore[type-arg]
    action_space: spaces.Box,
    *,
    num_envs: int,
    cell: Cell,
    device: str | torch.device,
) -> tuple[Model, Model]:
    """A recurrent policy and value of one cell type, sized by the configuration."""
    sizes = {"hidden_size": config.rnn_hidden_size, "num_layers": config.rnn_num_layers}
    common = {"sequence_length": config.sequence_length, **sizes}
    actor = RecurrentGaussianPolicy(
        observation_space,
        action_space,
        num_envs=num_envs,
        cell=cell,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        initialization=config.initialization,
        initial_log_std=config.initial_log_std,
        device=device,
        **common,
    )
    critic = RecurrentValue(
        observation_space,
        num_envs=num_envs,
        cell=cell,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        initialization=config.initialization,
        device=device,
        **common,
    )
    return actor, critic


def build_sac(
    config: SACConfig,
    observation_space: spaces.Space,  # type: ignore[type-arg]
    action_space: spaces.Box,
    *,
    num_envs: int,
    device: str | torch.device,
    world: World | None = None,
) -> SAC:
    """SAC with a tanh-squashed MLP Gaussian policy and twin MLP critics.

    Args:
        config: SAC hyperparameters (including network sizes).
        observation_space: Single-environment observation space.
        action_space: The normalised action Box.
        num_envs: Number of parallel environments.
        device: Device.
        world: The ranks of a data-parallel run; None: one process.

    Returns:
        The agent.
    """
    actor = GaussianMLPPolicy(
        observation_space,
        action_space,
        hidden_sizes=config.hidden_sizes,
        activation="relu",
        state_dependent_std=True,
        squash_actions=True,
        device=device,
    )
    critics = [QMLP(observation_space, action_space, hidden_sizes=config.hidden_sizes, device=device) for _ in range(4)]
    return SAC(
        policy=actor,
        critics=(critics[0], critics[1]),
        target_critics=(critics[2], critics[3]),
        config=config,
        num_envs=num_envs,
        world=world,
    )
