"""``gaussrl.agents.warp.dense``: the layers and their hand-written backward passes against float64 NumPy."""

from __future__ import annotations

import numpy as np
import pytest

wp = pytest.importorskip("warp")
pytest.importorskip("warp_nn")

from gaussrl.agents.warp.dense import Activation, Dense, ReLU, Tanh, Tape  # noqa: E402

# (rows, in, out): one row (a SAC act), a rollout's 4, and partial tiles on every axis (the tiles are 64 wide)
SHAPES = [(1, 3, 64), (4, 3, 64), (5, 17, 2), (100, 64, 64), (130, 129, 65)]


def _layer(rng, n_in, n_out):
    layer = Dense(n_in, n_out)
    layer.weight.data.assign(rng.standard_normal((n_out, n_in)).astype(np.float32) / np.sqrt(n_in))
    layer.bias.data.assign(rng.standard_normal((n_out, 1)).astype(np.float32))
    return layer


def _expected(layer, x, g):
    """Output and gradients of ``sum(g * (x W^T + b))`` in float64."""
    w = layer.weight.data.numpy().astype(np.float64)
    b = layer.bias.data.numpy().astype(np.float64)
    x, g = x.astype(np.float64), g.astype(np.float64)
    return x @ w.T + b.T, g @ w, g.T @ x, g.sum(axis=0)[:, None]


def _run(layer, x, g, tape):
    x = wp.array(x, dtype=wp.float32, requires_grad=True)
    with tape:
        y = layer(x)
    tape.backward(grads={y: wp.array(g, dtype=wp.float32)})
    return y.numpy(), x.grad.numpy(), layer.weight.data.grad.numpy(), layer.bias.data.grad.numpy()


@pytest.mark.parametrize("tape_type", [Tape, wp.Tape], ids=["gaussrl Tape (our backward)", "wp.Tape (Warp's adjoint)"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_and_gradients_match_float64(shape, tape_type):
    rows, n_in, n_out = shape
    rng = np.random.default_rng(rows * 1000 + n_in)
    layer = _layer(rng, n_in, n_out)
    x = rng.standard_normal((rows, n_in)).astype(np.float32)
    g = rng.standard_normal((rows, n_out)).astype(np.float32)
    got = _run(layer, x, g, tape_type())
    for name, a, b in zip(
        ("output", "input grad", "weight grad", "bias grad"), got, _expected(layer, x, g), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.sqrt(max(rows, n_in, n_out)), err_msg=name)


def test_frozen_parameters_keep_their_gradients_and_the_input_gets_its_own():
    rng = np.random.default_rng(0)
    layer = _layer(rng, 6, 5)
    x = rng.standard_normal((70, 6)).astype(np.float32)
    g = rng.standard_normal((70, 5)).astype(np.float32)
    layer.weight.data.grad.fill_(7.0)
    layer.bias.data.grad.fill_(7.0)
    _, dx, dw, db = _run(layer, x, g, Tape(frozen=[layer.weight.data, layer.bias.data]))
    np.testing.assert_array_equal(dw, np.full((5, 6), 7.0, np.float32))
    np.testing.assert_array_equal(db, np.full((5, 1), 7.0, np.float32))
    np.testing.assert_allclose(dx, _expected(layer, x, g)[1], rtol=1e-5, atol=1e-5)


def test_two_calls_in_one_tape_add_their_gradients():
    """Each call has its own output array, so the first call's backward pass still reads its own values."""
    rng = np.random.default_rng(1)
    layer = _layer(rng, 8, 3)
    x1, x2 = (rng.standard_normal((66, 8)).astype(np.float32) for _ in range(2))
    g1, g2 = (rng.standard_normal((66, 3)).astype(np.float32) for _ in range(2))
    a1, a2 = wp.array(x1, requires_grad=True), wp.array(x2, requires_grad=True)
    tape = Tape()
    with tape:
        y1, y2 = layer(a1), layer(a2)
    assert y1.ptr != y2.ptr
    tape.backward(grads={y1: wp.array(g1), y2: wp.array(g2)})
    _, dx1, dw1, db1 = _expected(layer, x1, g1)
    _, dx2, dw2, db2 = _expected(layer, x2, g2)
    np.testing.assert_allclose(a1.grad.numpy(), dx1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a2.grad.numpy(), dx2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.data.grad.numpy(), dw1 + dw2, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(layer.bias.data.grad.numpy(), db1 + db2, rtol=1e-5, atol=1e-4)


def test_input_gradient_adds_to_what_is_there_and_an_input_without_one_is_skipped():
    rng = np.random.default_rng(2)
    layer = _layer(rng, 4, 4)
    x = rng.standard_normal((9, 4)).astype(np.float32)
    g = rng.standard_normal((9, 4)).astype(np.float32)
    a = wp.array(x, requires_grad=True)
    a.grad.fill_(1.0)
    tape = Tape()
    with tape:
        y = layer(a)
        z = layer(wp.array(x))  # no gradient wanted for this input: only the parameters get one
    assert z.requires_grad
    tape.backward(grads={y: wp.array(g), z: wp.array(g)})
    _, dx, dw, _ = _expected(layer, x, g)
    np.testing.assert_allclose(a.grad.numpy(), dx + 1.0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.data.grad.numpy(), 2 * dw, rtol=1e-5, atol=1e-4)


def test_outside_a_tape_the_values_are_those_under_one():
    rng = np.random.default_rng(3)
    layer = _layer(rng, 3, 64)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    plain = layer(wp.array(x)).numpy()
    with Tape():
        taped = layer(wp.array(x, requires_grad=True)).numpy()
    np.testing.assert_array_equal(plain, taped)
    np.testing.assert_allclose(plain, _expected(layer, x, np.zeros((4, 64), np.float32))[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 5), np.float32), np.zeros(3, np.float32), np.zeros((4, 3), np.float64)],
    ids=["5 columns", "1-D", "float64"],
)
def test_wrong_input_is_a_clear_error(array):
    with pytest.raises(ValueError, match=r"Dense\(3, 2\) takes a 2-D float32 array of 3 columns; got shape"):
        Dense(3, 2)(wp.array(array))


# module, value, derivative from the output
ACTIVATIONS = {
    "tanh": (Tanh, np.tanh, lambda y: 1.0 - y**2),
    "relu": (ReLU, lambda x: np.maximum(x, 0.0), lambda y: y > 0),
}


@pytest.mark.parametrize("tape_type", [Tape, wp.Tape], ids=["gaussrl Tape (our backward)", "wp.Tape (Warp's adjoint)"])
@pytest.mark.parametrize("function", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 64), (4, 64), (130, 65)], ids=lambda s: "x".join(map(str, s)))
def test_activation_and_its_gradient_match_float64(shape, function, tape_type):
    module, value, slope = ACTIVATIONS[function]
    rng = np.random.default_rng(shape[0])
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    a = wp.array(x, requires_grad=True)
    tape = tape_type()
    with tape:
        y = module()(a)
    tape.backward(grads={y: wp.array(g)})
    expected = value(x.astype(np.float64))
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a.grad.numpy(), g * slope(expected), rtol=1e-5, atol=1e-6)


def test_relu_passes_nan_through_and_the_activations_reject_other_shapes():
    y = ReLU()(wp.array(np.array([[np.nan, -1.0, 2.0]], np.float32))).numpy()
    assert np.isnan(y[0, 0]) and y[0, 1] == 0.0 and y[0, 2] == 2.0
    with pytest.raises(ValueError, match=r"Tanh takes a 2-D float32 array; got shape \(3,\)"):
        Tanh()(wp.array(np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="Activation function must be 'tanh' or 'relu'; got 'gelu'"):
        Activation("gelu")


def test_a_network_run_twice_in_one_tape_gets_both_gradients():
    """New outputs per call: the first call's backward pass reads its own activations (warp_nn's reuse theirs)."""
    rng = np.random.default_rng(4)
    net = [_layer(rng, 3, 8), Tanh(), _layer(rng, 8, 1)]
    x1, x2 = (rng.standard_normal((5, 3)).astype(np.float32) for _ in range(2))

    def run(x):
        for layer in net:
            x = layer(x)
        return x

    def weight_grads(*inputs):
        for layer in (net[0], net[2]):
            layer.weight.data.grad.zero_()
        tape = Tape()
        with tape:
            outputs = [run(wp.array(x)) for x in inputs]
        tape.backward(grads={y: wp.ones_like(y) for y in outputs})
        return np.concatenate([net[i].weight.data.grad.numpy().ravel() for i in (0, 2)])

    np.testing.assert_allclose(weight_grads(x1, x2), weight_grads(x1) + weight_grads(x2), rtol=1e-5, atol=1e-6)
