"""JAX agents: ``PPO`` and ``SAC`` on the JAX/Flax models, optax, every update one jitted call."""

from gaussrl.agents.jax.sac import SAC

__all__ = ["SAC"]
