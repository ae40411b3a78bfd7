"""Flax parameters of gaussrl's torch MLP models, to start a JAX agent from the same weights as a torch one."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def flax_params(module: Any) -> dict[str, Any]:
    """``net.{2i}.weight``/``bias`` -> ``Dense_i`` ``kernel`` (the weight transposed)/``bias``, plus the log-std."""
    state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("net.")})
    params: dict[str, Any] = {
        f"Dense_{i}": {"kernel": state[f"net.{k}.weight"].T, "bias": state[f"net.{k}.bias"]}
        for i, k in enumerate(layers)
    }
    if "log_std_parameter" in state:
        params["log_std_parameter"] = state["log_std_parameter"]
    return jax.tree_util.tree_map(jax.numpy.asarray, {"params": params})


def assert_params_close(flax_tree: Any, module: Any, **tolerance: float) -> None:
    """Assert that Flax parameters equal a torch model's, leaf by leaf."""
    got = dict(jax.tree_util.tree_flatten_with_path(flax_tree)[0])
    want = dict(jax.tree_util.tree_flatten_with_path(flax_params(module))[0])
    assert got.keys() == want.keys()
    for path, value in want.items():
        np.testing.assert_allclose(np.asarray(got[path]), np.asarray(value), err_msg=str(path), **tolerance)
