"""``PPOConfig.initialization``: the weight distributions of the PPO networks, on every backend.

The oracles are closed forms: uniform weights and biases follow U(-1/sqrt(fan_in), 1/sqrt(fan_in))
(Kolmogorov-Smirnov test against scipy's uniform); orthogonal ones satisfy W W^T = gain^2 I on the
smaller side, with zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from gymnasium import spaces
from scipy import stats

from gaussrl.agents.config import Initialization

OBSERVATIONS = spaces.Box(-1.0, 1.0, (17,), np.float32)
ACTIONS = spaces.Box(-1.0, 1.0, (6,), np.float32)
HIDDEN = (128, 64)
Layers = list[tuple[np.ndarray, np.ndarray]]
"""(weight (out, in), bias (out,)) per layer, first to last."""


def _torch(initialization: Initialization, value: bool) -> Layers:
    torch = pytest.importorskip("torch")
    from gaussrl.agents.torch.networks import GaussianMLPPolicy, ValueMLP

    torch.manual_seed(0)
    shape = {"hidden_sizes": HIDDEN, "activation": "relu", "initialization": initialization}
    model = ValueMLP(OBSERVATIONS, **shape) if value else GaussianMLPPolicy(OBSERVATIONS, ACTIONS, **shape)
    linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    return [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears]


def _jax(initialization: Initialization, value: bool) -> Layers:
    pytest.importorskip("flax")
    from gaussrl.agents.jax.networks import GaussianMLPPolicy, ValueMLP

    shape = {"hidden_sizes": HIDDEN, "activation": "relu", "initialization": initialization}
    model = ValueMLP(OBSERVATIONS, **shape) if value else GaussianMLPPolicy(OBSERVATIONS, ACTIONS, **shape)
    model.init_state_dict(role="value" if value else "policy", key=0)
    params = model.state_dict.params["params"]
    dense = [params[f"Dense_{index}"] for index in range(len(HIDDEN) + 1)]
    return [(np.asarray(d["kernel"]).T, np.asarray(d["bias"])) for d in dense]


def _warp(initialization: Initialization, value: bool) -> Layers:
    pytest.importorskip("warp_nn")
    from warp_nn import nn

    from gaussrl.agents.warp.networks import GaussianMLPPolicy, ValueMLP

    shape = {"hidden_sizes": HIDDEN, "activation": "relu", "initialization": initialization}
    if value:
        model = ValueMLP(OBSERVATIONS, **shape, device="cpu", seed=0)
    else:
        model = GaussianMLPPolicy(OBSERVATIONS, ACTIONS, **shape, device="cpu", seed=0)
    linears = [m for m in model.net.modules() if isinstance(m, nn.Linear)]
    return [(m.weight.data.numpy(), m.bias.data.numpy()) for m in linears]


BACKENDS: dict[str, Callable[[Initialization, bool], Layers]] = {"torch": _torch, "jax": _jax, "warp": _warp}


@pytest.mark.parametrize("value", [False, True], ids=["policy", "value"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_uniform_initialization_follows_the_fan_in_bound(backend: str, value: bool) -> None:
    layers = BACKENDS[backend]("uniform", value)
    fans = [OBSERVATIONS.shape[0], *HIDDEN]
    assert [w.shape for w, _ in layers] == [
        (out, fan) for fan, out in zip(fans, [*HIDDEN, 1 if value else 6], strict=True)
    ]
    for (weight, bias), fan_in in zip(layers, fans, strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        for sample in (weight.ravel(), bias):
            assert np.all(np.abs(sample) <= bound)
        # The weights of one layer: thousands of draws, enough for the test to see a wrong bound or shape.
        assert stats.kstest(weight.ravel(), stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-4
        assert np.any(bias != 0.0)
    # All biases together (hundreds of draws), scaled to U(-1, 1).
    scaled = np.concatenate([b * math.sqrt(fan) for (_, b), fan in zip(layers, fans, strict=True)])
    assert stats.kstest(scaled, stats.uniform(-1.0, 2.0).cdf).pvalue > 1e-4


@pytest.mark.parametrize("value", [False, True], ids=["policy", "value"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_orthogonal_initialization_is_the_default(backend: str, value: bool) -> None:
    layers = BACKENDS[backend]("orthogonal", value)
    gains = [math.sqrt(2.0)] * len(HIDDEN) + [1.0 if value else 0.01]
    for (weight, bias), gain in zip(layers, gains, strict=True):
        small = weight @ weight.T if weight.shape[0] <= weight.shape[1] else weight.T @ weight
        np.testing.assert_allclose(small, gain**2 * np.eye(small.shape[0]), atol=1e-5)
        assert not np.any(bias)


def test_initialization_is_validated() -> None:
    from gaussrl.agents.config import PPOConfig
    from gaussrl.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"initialization='xavier' must be 'orthogonal' or 'uniform'"):
        PPOConfig(initialization="xavier")  # type: ignore[arg-type]
