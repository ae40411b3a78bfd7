"""JAX agents: ``PPO`` and ``SAC`` (every update one jitted call), the PPO core and the gymnax PPO.

:mod:`gaussrl.agents.jax.ppo_core` holds the pure PPO functions, :mod:`gaussrl.agents.jax.ppo_compiled`
the end-to-end compiled gymnax path and :mod:`gaussrl.agents.jax.networks` the default networks.
"""

from gaussrl.agents.jax.ppo import PPO
from gaussrl.agents.jax.sac import SAC

__all__ = ["PPO", "SAC"]
