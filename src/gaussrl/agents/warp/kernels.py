"""Element-wise Warp kernels of the Warp agents: joining, splitting, gathering and normalising arrays.

All of them are float32 (the dtype of ``warp_nn`` layers) and live in one Warp module, so a
process compiles them together once (the kernel cache keeps them across processes); the matrix
products of :class:`gaussrl.agents.warp.dense.Dense` (:func:`dense_kernels`) get a module per tile shape.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import warp as wp

from gaussrl.agents.normalizer import NORMALIZED_CLIP, STD_FLOOR

MODULE = "gaussrl_agents"
f32 = wp.float32


@wp.kernel(module=MODULE)
def concat_kernel(a: wp.array2d(dtype=f32), b: wp.array2d(dtype=f32), out: wp.array2d(dtype=f32)):
    """``out = [a, b]`` along the feature axis; launched over out's shape."""
    i, j = wp.tid()
    width = a.shape[1]
    if j < width:
        out[i, j] = a[i, j]
    else:
        out[i, j] = b[i, j - width]


@wp.kernel(module=MODULE)
def split_kernel(x: wp.array2d(dtype=f32), first: wp.array2d(dtype=f32), second: wp.array2d(dtype=f32)):
    """``first, second = x[:, :A], x[:, A:]`` (torch's ``chunk(2, -1)``); launched over (N, A)."""
    i, j = wp.tid()
    first[i, j] = x[i, j]
    second[i, j] = x[i, j + first.shape[1]]


@wp.kernel(module=MODULE, enable_backward=False)
def gather_kernel(source: wp.array2d(dtype=f32), index: wp.array1d(dtype=wp.int32), out: wp.array2d(dtype=f32)):
    """``out[i] = source[index[i]]``; launched over out's shape."""
    i, j = wp.tid()
    out[i, j] = source[index[i], j]


@wp.kernel(module=MODULE, enable_backward=False)
def normalize_kernel(
    x: wp.array2d(dtype=f32), mean: wp.array1d(dtype=f32), std: wp.array1d(dtype=f32), out: wp.array2d(dtype=f32)
):
    """``clip((x - mean) / std, -5, 5)`` (skrl's RunningStandardScaler); launched over x's shape."""
    i, j = wp.tid()
    y = (x[i, j] - mean[j]) / std[j]
    out[i, j] = wp.clamp(y, -wp.static(NORMALIZED_CLIP), wp.static(NORMALIZED_CLIP))


@wp.kernel(module=MODULE, enable_backward=False)
def fold_kernel(  # noqa: PLR0917 (Warp kernels take positional arguments)
    x: wp.array2d(dtype=f32),
    mean: wp.array1d(dtype=wp.float64),
    var: wp.array1d(dtype=wp.float64),
    count: wp.array1d(dtype=wp.float64),
    mean32: wp.array1d(dtype=f32),
    std32: wp.array1d(dtype=f32),
):
    """Fold the batch ``x`` (B, F) into running float64 statistics; launched over one thread.

    The batch's two-pass mean and population variance, merged as
    :func:`gaussrl.core.running.merge_moments` does (Chan et al., 1979); then the float32 mean and
    ``max(sqrt(var), STD_FLOOR)`` that normalising reads. One thread: the count is shared by the
    features, and a batch is a rollout's returns (a few thousand values) or one step's observations.
    """
    m = wp.float64(x.shape[0])
    n = count[0]
    total = n + m
    for j in range(x.shape[1]):
        s = wp.float64(0.0)
        for i in range(x.shape[0]):
            s += wp.float64(x[i, j])
        batch_mean = s / m
        squares = wp.float64(0.0)
        for i in range(x.shape[0]):
            centered = wp.float64(x[i, j]) - batch_mean
            squares += centered * centered
        delta = batch_mean - mean[j]
        var[j] = (var[j] * n + squares + delta * delta * (n * m / total)) / total
        mean[j] = mean[j] + delta * (m / total)
        mean32[j] = f32(mean[j])
        std32[j] = f32(wp.max(wp.sqrt(var[j]), wp.float64(wp.static(STD_FLOOR))))
    count[0] = total


@wp.kernel(module=MODULE, enable_backward=False)
def denormalize_kernel(
    y: wp.array2d(dtype=f32), mean: wp.array1d(dtype=f32), std: wp.array1d(dtype=f32), out: wp.array2d(dtype=f32)
):
    """``y * std + mean``; launched over y's shape."""
    i, j = wp.tid()
    out[i, j] = y[i, j] * std[j] + mean[j]


@wp.kernel(module=MODULE, enable_backward=False)
def bootstrap_kernel(  # noqa: PLR0917 (Warp kernels take positional arguments)
    rewards: wp.array2d(dtype=f32),
    scale: float,
    gamma: float,
    final_values: wp.array2d(dtype=f32),
    bootstrap: wp.array2d(dtype=f32),
    out: wp.array2d(dtype=f32),
):
    """``rewards * scale + gamma * V(final observation) * bootstrap``; launched over (N,)."""
    i = wp.tid()
    out[i, 0] = rewards[i, 0] * scale + gamma * final_values[i, 0] * bootstrap[i, 0]


@wp.kernel(module=MODULE, enable_backward=False)
def scale_kernel(x: wp.array2d(dtype=f32), scale: float, out: wp.array2d(dtype=f32)):
    """``out = x * scale``; launched over x's shape."""
    i, j = wp.tid()
    out[i, j] = x[i, j] * scale


class DenseKernels(NamedTuple):
    """The kernels of :class:`gaussrl.agents.warp.dense.Dense` for one tile shape."""

    forward: Any
    input_grad: Any
    weight_grad: Any
    bias_grad: Any


@functools.cache
def dense_kernels(rows: int, cols: int, depth: int) -> DenseKernels:
    """The kernels of one tile shape: ``rows`` x ``cols`` output tiles, reduction in chunks of ``depth``.

    Kernel definitions (code, no data) per static tile shape; each shape is one Warp module,
    compiled once per process (and kept in Warp's kernel cache across processes).
    """
    module = f"gaussrl_dense_{rows}x{cols}x{depth}"

    @wp.kernel(module=module)
    def forward(x: wp.array2d[float], w: wp.array2d[float], b: wp.array2d[float], y: wp.array2d[float]):
        # y[i-tile, j-tile] = x[i-tile, :] @ w[j-tile, :]^T + b[j-tile]; partial tiles load zeros
        i, j = wp.tid()
        acc = wp.tile_zeros(shape=(rows, cols), dtype=float)
        for k in range((x.shape[1] + depth - 1) // depth):
            a = wp.tile_load(x, shape=(rows, depth), offset=(i * rows, k * depth))
            c = wp.tile_load(w, shape=(cols, depth), offset=(j * cols, k * depth))
            wp.tile_matmul(a, wp.tile_transpose(c), acc)
        bias = wp.tile_load(b, shape=(cols, 1), offset=(j * cols, 0))
        out = acc + wp.tile_broadcast(wp.tile_transpose(bias), shape=(rows, cols))
        wp.tile_store(y, out, offset=(i * rows, j * cols))

    @wp.kernel(module=module, enable_backward=False)
    def input_grad(dy: wp.array2d[float], w: wp.array2d[float], dx: wp.array2d[float]):
        # dx[i-tile, j-tile] += dy[i-tile, :] @ w[:, j-tile]; tiles (rows, depth), reduction over outputs by cols
        i, j = wp.tid()
        acc = wp.tile_load(dx, shape=(rows, depth), offset=(i * rows, j * depth))
        for k in range((dy.shape[1] + cols - 1) // cols):
            a = wp.tile_load(dy, shape=(rows, cols), offset=(i * rows, k * cols))
            c = wp.tile_load(w, shape=(cols, depth), offset=(k * cols, j * depth))
            wp.tile_matmul(a, c, acc)
        wp.tile_store(dx, acc, offset=(i * rows, j * depth))

    @wp.kernel(module=module, enable_backward=False)
    def weight_grad(dy: wp.array2d[float], x: wp.array2d[float], dw: wp.array2d[float]):
        # dw[i-tile, j-tile] += dy[:, i-tile]^T @ x[:, j-tile]; tiles (cols, depth), reduction over the batch by rows
        i, j = wp.tid()
        acc = wp.tile_load(dw, shape=(cols, depth), offset=(i * cols, j * depth))
        for k in range((dy.shape[0] + rows - 1) // rows):
            a = wp.tile_load(dy, shape=(rows, cols), offset=(k * rows, i * cols))
            c = wp.tile_load(x, shape=(rows, depth), offset=(k * rows, j * depth))
            wp.tile_matmul(wp.tile_transpose(a), c, acc)
        wp.tile_store(dw, acc, offset=(i * cols, j * depth))

    @wp.kernel(module=module, enable_backward=False)
    def bias_grad(dy: wp.array2d[float], db: wp.array2d[float]):
        j = wp.tid()
        total = float(0.0)  # noqa: UP018 (a Warp variable the loop may change, not a constant)
        for i in range(dy.shape[0]):
            total += dy[i, j]
        db[j, 0] = db[j, 0] + total

    return DenseKernels(forward, input_grad, weight_grad, bias_grad)


@wp.func
def tanh_value(x: float):
    """``tanh(x)``."""
    return wp.tanh(x)


@wp.func
def tanh_slope(y: float, dy: float):
    """``dy * tanh'(x)`` from the output ``y = tanh(x)``."""
    return dy * (1.0 - y * y)


@wp.func
def relu_value(x: float):
    """``max(x, 0)``."""
    if x <= 0.0:  # false for NaN, which passes through (as warp_nn's and torch's ReLU)
        return 0.0
    return x


@wp.func
def relu_slope(y: float, dy: float):
    """``dy * relu'(x)`` from the output ``y = relu(x)`` (0 at x = 0, as torch)."""
    if y > 0.0:
        return dy
    return 0.0


class ActivationKernels(NamedTuple):
    """The kernels of :class:`gaussrl.agents.warp.dense.Activation` for one function and tile shape."""

    forward: Any
    backward: Any


@functools.cache
def activation_kernels(function: str, rows: int, cols: int) -> ActivationKernels:
    """The element-wise ``"tanh"`` or ``"relu"`` over ``rows`` x ``cols`` tiles, and its backward pass from the output.

    As :func:`dense_kernels`: kernel definitions per static shape, one Warp module each.
    """
    value, slope = {"tanh": (tanh_value, tanh_slope), "relu": (relu_value, relu_slope)}[function]
    module = f"gaussrl_activation_{function}_{rows}x{cols}"

    @wp.kernel(module=module)
    def forward(x: wp.array2d[float], y: wp.array2d[float]):
        i, j = wp.tid()
        t = wp.tile_load(x, shape=(rows, cols), offset=(i * rows, j * cols))
        wp.tile_store(y, wp.tile_map(wp.static(value), t), offset=(i * rows, j * cols))

    @wp.kernel(module=module, enable_backward=False)
    def backward(y: wp.array2d[float], dy: wp.array2d[float], dx: wp.array2d[float]):
        # dx += dy * f'(x), f' read from the output
        i, j = wp.tid()
        offset = (i * rows, j * cols)
        t = wp.tile_load(y, shape=(rows, cols), offset=offset)
        g = wp.tile_load(dy, shape=(rows, cols), offset=offset)
        acc = wp.tile_load(dx, shape=(rows, cols), offset=offset)
        wp.tile_store(dx, acc + wp.tile_map(wp.static(slope), t, g), offset=offset)

    return ActivationKernels(forward, backward)
