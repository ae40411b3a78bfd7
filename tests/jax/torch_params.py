"""Compare a JAX agent's Flax parameters with a torch model's (the torch twin converted by ``params_from_torch``)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from gaussrl.agents.jax.networks import params_from_torch


def flax_params(module: Any) -> Any:
    """The Flax parameters of a torch MLP model, as jax arrays."""
    return params_from_torch(module.state_dict())


def assert_params_close(flax_tree: Any, module: Any, **tolerance: float) -> None:
    """Assert that Flax parameters equal a torch model's, leaf by leaf."""
    got = dict(jax.tree_util.tree_flatten_with_path(flax_tree)[0])
    want = dict(jax.tree_util.tree_flatten_with_path(flax_params(module))[0])
    assert got.keys() == want.keys()
    for path, value in want.items():
        np.testing.assert_allclose(np.asarray(got[path]), np.asarray(value), err_msg=str(path), **tolerance)
