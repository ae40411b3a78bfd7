"""The small-batch copy of a network (``gaussrl.agents.warp.tiles``): the network's function, on its parameters.

The oracle is a NumPy MLP on the parameters read back from the model, forward and backward.
"""

from __future__ import annotations

import numpy as np
import pytest
import warp as wp
from gymnasium import spaces

from gaussrl.agents.warp.memory import load_arrays
from gaussrl.agents.warp.networks import GaussianMLPPolicy
from gaussrl.agents.warp.tiles import CPU_TILE_2D, CPU_TILE_MIN_BATCH, retiled, small_batch_tile

OBS, ACT = spaces.Box(-np.inf, np.inf, (3,), np.float32), spaces.Box(-1.0, 1.0, (2,), np.float32)
TOL = {"rtol": 1e-5, "atol": 1e-6}


@pytest.mark.parametrize(
    ("batch_size", "rows", "expected"),
    [(128, 1, (1, 64)), (128, 4, (4, 64)), (128, 5, (8, 64)), (256, 40, (16, 64)), (128, 64, None), (32, 4, None)],
)
def test_small_batch_tile(batch_size, rows, expected):
    assert small_batch_tile("cpu", batch_size, rows) == expected


def _numpy_mlp(arrays, x):
    """Forward pass of net.0 -> tanh -> net.2 -> tanh -> net.4 and the layers' inputs, from the state dict."""
    inputs, h = [], x.astype(np.float64)
    for index in (0, 2, 4):
        inputs.append(h)
        h = h @ arrays[f"net.{index}.weight"].T + arrays[f"net.{index}.bias"].reshape(-1)
        if index < 4:
            h = np.tanh(h)
    return h, inputs


def _numpy_weight_grads(arrays, x):
    """d sum(net(x)) / d weight of each layer, by backpropagation through the tanh MLP."""
    _, inputs = _numpy_mlp(arrays, x)
    grads, upstream = {}, np.ones((x.shape[0], arrays["net.4.weight"].shape[0]))
    for index, layer_input in zip((4, 2, 0), reversed(inputs), strict=True):
        grads[index] = upstream.T @ layer_input
        if index > 0:
            upstream = (upstream @ arrays[f"net.{index}.weight"]) * (1.0 - layer_input**2)  # tanh' = 1 - tanh^2
    return grads


def _policy(small_tile_2d):
    return GaussianMLPPolicy(
        OBS, ACT, hidden_sizes=(16, 16), device="cpu", seed=3, tile_2d=CPU_TILE_2D, small_tile_2d=small_tile_2d
    )


def _arrays(policy):
    return {k: v.numpy().astype(np.float64) for k, v in policy.state_dict().items()}


def test_the_small_copy_computes_the_network_on_its_current_parameters():
    policy = _policy((4, 64))
    assert policy.state_dict().keys() == _policy(None).state_dict().keys()  # the copy adds no parameter
    rng = np.random.default_rng(0)
    for rows in (3, 100):  # the copy, then the network itself
        x = rng.standard_normal((rows, 3)).astype(np.float32)
        mean, _ = policy.compute({"observations": wp.array(x, device="cpu")})
        np.testing.assert_allclose(mean.numpy(), _numpy_mlp(_arrays(policy), x)[0], **TOL)
    # New parameter values (as a checkpoint load or an optimizer step writes them): the copy reads them.
    load_arrays(policy, {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in _arrays(policy).items()})
    x = rng.standard_normal((4, 3)).astype(np.float32)
    mean, _ = policy.compute({"observations": wp.array(x, device="cpu")})
    np.testing.assert_allclose(mean.numpy(), _numpy_mlp(_arrays(policy), x)[0], **TOL)


def test_a_tape_through_the_small_copy_writes_the_network_gradients():
    policy = _policy((4, 64))
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    assert x.shape[0] < CPU_TILE_MIN_BATCH
    tape = wp.Tape()
    with tape:
        mean, _ = policy.compute({"observations": wp.array(x, device="cpu")})
    tape.backward(grads={mean: wp.ones_like(mean)})
    expected = _numpy_weight_grads(_arrays(policy), x)
    for index, grad in expected.items():
        got = list(policy.net.modules())[index].weight.data.grad.numpy()
        np.testing.assert_allclose(got, grad, rtol=1e-4, atol=1e-5, err_msg=f"net.{index}.weight")


def test_retiled_rejects_layers_it_cannot_copy():
    from warp_nn import nn

    with wp.ScopedDevice("cpu"):
        net = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid())
    with pytest.raises(TypeError, match="Linear, Tanh and ReLU"):
        retiled(net, (4, 64))


def test_the_small_copy_rounds_as_the_network_does():
    """Both tiles sum each product in the same order (chunks of the input features), so a run's values do not move."""
    policy = _policy((4, 64))
    x = wp.array(np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32), device="cpu")
    small, _ = policy.compute({"observations": x})
    small = small.numpy().copy()
    np.testing.assert_array_equal(small, policy.net(x).numpy())  # policy.net: the (64, 64) tile
