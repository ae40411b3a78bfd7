"""The same public surface on every backend, and outputs of ``compute`` that reach the caller unchanged."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from tests.contract.helpers import box, draw, scipy_log_prob

EXTRAS = {
    "tag": "hello",
    "nothing": None,
    "count": 3,
    "scale": 1.5,
    "flag": True,
    "nested": {"names": ["a", None, 2], "inner": {"label": "x"}},
}


@pytest.mark.parametrize("squash", [False, True])
def test_values_that_are_not_arrays_reach_the_caller_unchanged(backend, squash):
    policy = backend.policy(box(), extras=EXTRAS, squash_actions=squash)
    mean, log_std = draw(0, n=5), np.full(4, -0.5, np.float32)
    for _ in range(2):  # the second call reuses the first call's compiled function on JAX
        actions, outputs = backend.act_raw(policy, mean, log_std)
        for key, value in EXTRAS.items():
            assert outputs[key] == value and type(outputs[key]) is type(value), key
    assert type(outputs["nested"]["names"][2]) is int
    if not squash:
        log_prob = scipy_log_prob(_to_numpy(actions), mean, log_std).sum(-1, keepdims=True)
        np.testing.assert_allclose(_to_numpy(outputs["log_prob"]), log_prob, rtol=1e-5, atol=1e-5)


PUBLIC = {
    "act",
    "check_inputs",
    "enable_training_mode",
    "freeze_parameters",
    "get_entropy",
    "get_kl_divergence",
    "get_specification",
    "init_state_dict",
    "load",
    "random_act",
    "save",
    "seed",
    "update_parameters",
}
"""Methods of a Gaussian policy on every backend (besides its framework's own module methods)."""

ONLY = {
    "torch": {"compute", "distribution", "init_parameters", "init_weights", "init_biases"},
    "jax": {"advance_key", "ready_state_dict"},
    "warp": {"compute", "init_parameters", "init_weights", "init_biases", "next_seed"},
}
"""The differences listed in the README's table of backend differences (JAX's network is ``__call__``)."""

FRAMEWORK_MODULES = {"torch": ("torch.nn", "Module"), "jax": ("flax.linen", "Module"), "warp": ("warp_nn.nn", "Module")}


def _policy_class(name: str) -> type:
    models = importlib.import_module(f"gaussrl.models.{name}")
    return type("Policy", (models.GaussianMixin, models.Model), {})


@pytest.mark.parametrize("name", sorted(ONLY))
def test_each_backend_has_the_common_methods_and_only_the_listed_extras(name):
    pytest.importorskip({"torch": "torch", "jax": "flax", "warp": "warp_nn"}[name])
    module, attribute = FRAMEWORK_MODULES[name]
    framework = set(dir(getattr(importlib.import_module(module), attribute)))
    policy_class = _policy_class(name)
    methods = {n for n in dir(policy_class) if not n.startswith("_") and callable(getattr(policy_class, n))}
    assert methods - framework == PUBLIC | ONLY[name]


SIGNATURES = {
    "act": ["inputs", "role"],
    "get_kl_divergence": ["mean_actions", "log_std", "role"],
    "random_act": ["inputs", "role"],
    "init_state_dict": ["role", "inputs"],
    "update_parameters": ["model", "polyak"],
    "seed": ["seed"],
}
"""Parameters every backend's method takes first, in this order (a backend may add keyword-only ones after)."""


@pytest.mark.parametrize("method", sorted(SIGNATURES))
def test_common_methods_take_the_same_parameters(method):
    for name in sorted(ONLY):
        if importlib.util.find_spec({"torch": "torch", "jax": "flax", "warp": "warp_nn"}[name]) is None:
            continue
        parameters = list(inspect.signature(getattr(_policy_class(name), method)).parameters)[1:]
        assert parameters[: len(SIGNATURES[method])] == SIGNATURES[method], (name, parameters)


@pytest.mark.parametrize("name", sorted(ONLY))
def test_the_recurrent_runners_take_the_same_parameters(name):
    pytest.importorskip({"torch": "torch", "jax": "flax", "warp": "warp_nn"}[name])
    runner = importlib.import_module(f"gaussrl.models.{name}.recurrent").run_recurrent
    parameters = inspect.signature(runner).parameters
    assert list(parameters) == ["rnn" if name != "jax" else "cell", "features", "hidden", *RUNNER_KEYWORDS]
    assert all(parameters[p].kind is inspect.Parameter.KEYWORD_ONLY for p in RUNNER_KEYWORDS)


RUNNER_KEYWORDS = ["sequence_length", "training", "terminated"]


def test_kl_divergence_is_the_closed_form_against_the_last_act(backend):
    """``get_kl_divergence`` on every backend, squashing too: KL(given || last act's Gaussian)."""
    for squash in (False, True):
        policy = backend.policy(box(), squash_actions=squash)
        mean_q, log_std_q = draw(1, n=6), np.full(4, -0.2, np.float32)
        backend.act_raw(policy, mean_q, log_std_q)
        mean_p, log_std_p = draw(2, n=6), draw(3, n=6, scale=0.3)
        got = _to_numpy(policy.get_kl_divergence(*_like(backend, mean_p, log_std_p)))
        var_p, var_q = np.exp(2.0 * log_std_p.astype(float)), np.exp(2.0 * log_std_q.astype(float))
        per_dim = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5
        np.testing.assert_allclose(got, per_dim.sum(-1, keepdims=True), rtol=1e-5, atol=1e-5)


def _like(backend, *arrays):
    if backend.name == "torch":
        import torch

        return [torch.as_tensor(a) for a in arrays]
    if backend.name == "jax":
        import jax.numpy as jnp

        return [jnp.asarray(a) for a in arrays]
    import warp as wp

    return [wp.array(a, dtype=wp.float32, device="cpu") for a in arrays]


def _to_numpy(value):
    if hasattr(value, "detach"):
        value = value.detach()
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
