"""PyTorch agents: ``PPO`` and ``SAC``, with their default networks and storage."""

from gaussrl.agents.torch.ppo import PPO
from gaussrl.agents.torch.sac import SAC

__all__ = ["PPO", "SAC"]
