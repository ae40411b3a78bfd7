"""Agents: backend-free configurations in :mod:`gaussrl.agents.config`, implementations per backend."""

from gaussrl.agents.config import PPOConfig, SACConfig

__all__ = ["PPOConfig", "SACConfig"]
