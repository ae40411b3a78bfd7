"""gaussrl's agents on NVIDIA Warp: PPO and SAC on ``gaussrl.models.warp``, differentiated with ``wp.Tape``."""

from gaussrl.agents.warp.memory import WarpStep
from gaussrl.agents.warp.ppo import PPO
from gaussrl.agents.warp.sac import SAC

__all__ = ["PPO", "SAC", "WarpStep"]
