"""JAX agents: the pure PPO core (:mod:`gaussrl.agents.jax.ppo_core`) and the default networks."""
