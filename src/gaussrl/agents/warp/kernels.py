"""Element-wise Warp kernels of the Warp agents: joining, splitting, gathering and normalising arrays.

All of them are float32 (the dtype of ``warp_nn`` layers) and live in one Warp module, so a
process compiles them together once (the kernel cache keeps them across processes).
"""

from __future__ import annotations

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
