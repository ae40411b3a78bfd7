"""A trained policy as NumPy arrays under its torch twin's names: what ``gaussrl export`` reads from any backend.

The MLP policies of the three backends have the same layers (the cross-backend tests load one
set of parameters into all of them), so ``gaussrl export`` loads a JAX or Warp agent's arrays
into the torch twin (``gaussrl.agents.torch.networks``) and exports that with the one torch exporter.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PolicyArrays(NamedTuple):
    """A policy's parameters and observation statistics, as the torch agents hold them."""

    state_dict: dict[str, np.ndarray]
    """The torch twin's ``state_dict``: ``net.{k}.weight`` (out, in), ``net.{k}.bias`` (out,), ``log_std_parameter``."""
    obs_mean: np.ndarray | None
    """Mean of the observation normaliser, (num_observations,); None without normalisation."""
    obs_std: np.ndarray | None
    """Its standard deviation as the normaliser divides by it (at least ``STD_FLOOR``), (num_observations,)."""
