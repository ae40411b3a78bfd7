"""Warp kernels of the Gaussian head and the element-wise helpers, and the check of arrays entering them.

Every kernel comes from a cached factory specialised on the dtype (and, for kernels that
reduce over the action axis, on A) and lives in its own Warp module: a process compiles
only the kernels it launches, and compiling one never invalidates another. Everything
else (reduction, squashing, clipping, taken actions, shared or per-row log-std) is a
runtime flag, so the head costs one compilation per (A, dtype).

Loops over the action axis use ``range(wp.static(A))`` with ``max_unroll >= A``: Warp
unrolls them, so the product accumulator of ``"prod"`` is differentiated correctly (a
dynamic loop with a loop-carried product gives wrong gradients without any warning).

The head kernel takes: mean (N, A); log_std (1, A) or (N, A); taken (N, A) or a (1, A) dummy;
k (5, A): clip low/high, squash center/scale, log(scale); the log-std bounds; eps; ints
(per_row, clip_mean, reduction, seed); flags (has_taken, clip_actions, squash, 0). It writes
actions, log_prob ((N, 1) or (N, A)), the clamped log-std (flat), mean_out and the
per-dimension entropy (N, A).
"""

import functools
from typing import Any

import warp as wp

from gaussrl.core.errors import InputError, InputTypeError
from gaussrl.core.reference import LOG_2, LOG_SQRT_2PI

ENTROPY_CONSTANT = 0.5 + LOG_SQRT_2PI
"""Per-dimension entropy of a Normal minus its log-std."""

FLOAT_DTYPES = (wp.float32, wp.float64)
REDUCTION_CODES = {"none": 0, "sum": 1, "mean": 2, "prod": 3}


def check_array(what: str, value: Any, device: Any) -> None:
    """Reject anything but a floating ``warp.array`` on ``device``.

    Args:
        what: What the value is, for the message (e.g. ``'inputs["observations"]'``).
        value: The value to check.
        device: The model's device.

    Raises:
        InputTypeError: If ``value`` is not a float32/float64 ``warp.array``.
        InputError: If it lives on another device.
    """
    if not isinstance(value, wp.array):
        raise InputTypeError(
            f"{what} is a {type(value).__name__}; the Warp backend expects a warp.array on device "
            f'"{device}". Convert it first, e.g. wp.array(x, dtype=wp.float32, device="{device}").'
        )
    if value.dtype not in FLOAT_DTYPES:
        raise InputTypeError(
            f"{what} has dtype {value.dtype.__name__}; expected float32 (or float64). Build it with dtype=wp.float32."
        )
    if value.device != device:
        raise InputError(
            f'{what} is on device "{value.device}"; expected the model\'s device "{device}". '
            f'Move it with x.to("{device}"), or build the model with device="{value.device}".'
        )


# Warp kernels and functions take positional arguments only, hence the PLR0917 exemptions below.


def _unique(num_actions: int = 1) -> Any:
    return wp.kernel(module="unique", module_options={"max_unroll": max(16, num_actions)})


@functools.cache
def scalar_funcs(dtype: Any) -> tuple[Any, Any, Any, Any]:
    """The Warp functions shared by the kernels of one dtype.

    Args:
        dtype: ``wp.float32`` or ``wp.float64``.

    Returns:
        ``(log_density, tanh_log_det, atanh, clamp)``.
    """
    DT = dtype
    suffix = dtype.__name__

    @wp.func(name=f"gaussrl_log_density_{suffix}")
    def log_density(x: DT, mean: DT, log_std: DT) -> DT:
        z = (x - mean) * wp.exp(-log_std)
        return DT(-0.5) * z * z - log_std - DT(LOG_SQRT_2PI)

    @wp.func(name=f"gaussrl_tanh_log_det_{suffix}")
    def tanh_log_det(u: DT) -> DT:
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)); softplus(x) = max(x, 0) + log(1 + exp(-|x|)).
        x = DT(-2.0) * u
        softplus = wp.max(x, DT(0.0)) + wp.log(DT(1.0) + wp.exp(-wp.abs(x)))
        return DT(2.0) * (DT(LOG_2) - u - softplus)

    @wp.func(name=f"gaussrl_atanh_{suffix}")
    def atanh(y: DT) -> DT:
        return DT(0.5) * wp.log((DT(1.0) + y) / (DT(1.0) - y))

    @wp.func(name=f"gaussrl_clamp_{suffix}")
    def clamp(x: DT, low: DT, high: DT) -> DT:
        # Not wp.clamp: its gradient is 0 on the upper bound; this one's is 1 on [low, high], as
        # torch.clamp's, and a NaN stays NaN (wp.clamp returns the lower bound).
        return wp.where(x < low, low, wp.where(x > high, high, x))

    return log_density, tanh_log_det, atanh, clamp


@functools.cache
def _element_funcs(dtype: Any) -> Any:
    """One action dimension of the head: ``(action, log_prob, entropy correction, mean shown)``."""
    DT = dtype
    suffix = dtype.__name__
    log_density, tanh_log_det, atanh, _ = scalar_funcs(dtype)

    @wp.func(name=f"gaussrl_plain_{suffix}")
    def plain(mean: DT, log_std: DT, noise: DT, taken: DT, has_taken: int, clip: int, low: DT, high: DT):  # noqa: PLR0917
        action = mean + wp.exp(log_std) * noise
        if clip == 1:
            action = wp.clamp(action, low, high)
        # Scoring the fresh sample through its noise is exact and keeps d/dmean = 0 as in torch.
        log_prob = DT(-0.5) * noise * noise - log_std - DT(LOG_SQRT_2PI)
        if has_taken == 1:
            log_prob = log_density(taken, mean, log_std)
        elif clip == 1:
            log_prob = log_density(action, mean, log_std)
        return action, log_prob

    @wp.func(name=f"gaussrl_squashed_{suffix}")
    def squashed(mean: DT, log_std: DT, noise: DT, taken: DT, has_taken: int, k: wp.array2d(dtype=DT), j: int, eps: DT):  # noqa: PLR0917
        center, scale, log_scale = k[2, j], k[3, j], k[4, j]
        pre_tanh = mean + wp.exp(log_std) * noise
        scored = pre_tanh
        log_prob = DT(-0.5) * noise * noise - log_std - DT(LOG_SQRT_2PI)
        if has_taken == 1:
            # Taken actions on the bounds are moved inside by one eps of the dtype before atanh.
            scored = atanh(wp.clamp((taken - center) / scale, DT(-1.0) + eps, DT(1.0) - eps))
            log_prob = log_density(scored, mean, log_std)
        log_prob = log_prob - tanh_log_det(scored) - log_scale
        action = center + scale * wp.tanh(pre_tanh)
        return action, log_prob, tanh_log_det(pre_tanh) + log_scale, center + scale * wp.tanh(mean)

    @wp.func(name=f"gaussrl_element_{suffix}")
    def element(mean: DT, log_std: DT, noise: DT, taken: DT, flags: wp.vec4i, k: wp.array2d(dtype=DT), j: int, eps: DT):  # noqa: PLR0917
        # flags: has_taken, clip_actions, squash, unused.
        if flags[2] == 1:
            action, log_prob, extra, shown = squashed(mean, log_std, noise, taken, flags[0], k, j, eps)
        else:
            action, log_prob = plain(mean, log_std, noise, taken, flags[0], flags[1], k[0, j], k[1, j])
            extra = DT(0.0)
            shown = mean
        return action, log_prob, extra, shown

    return element


@functools.cache
def _reduce_func(num_actions: int, dtype: Any) -> Any:
    DT = dtype

    @wp.func(name=f"gaussrl_reduce_{num_actions}_{dtype.__name__}")
    def reduce(total: DT, product: DT, reduction: int) -> DT:
        out = total
        if reduction == 2:
            out = total / DT(num_actions)
        if reduction == 3:
            out = product
        return out

    return reduce


@functools.cache
def head_kernel(num_actions: int, dtype: Any) -> Any:
    """The whole Gaussian head (arguments: see the module docstring) in one launch, one thread per row.

    Args:
        num_actions: A, unrolled at compile time.
        dtype: ``wp.float32`` or ``wp.float64``.

    Returns:
        The kernel.
    """
    DT = dtype
    element = _element_funcs(dtype)
    reduce = _reduce_func(num_actions, dtype)
    clamp = scalar_funcs(dtype)[3]
    arr = wp.array2d(dtype=DT)

    @_unique(num_actions)
    def gaussian_head(  # noqa: PLR0917
        mean: arr, log_std: arr, taken: arr, k: arr, log_std_low: DT, log_std_high: DT, eps: DT,
        ints: wp.vec4i, flags: wp.vec4i,
        actions: arr, log_prob: arr, log_std_out: wp.array(dtype=DT), mean_out: arr, entropy: arr,
    ):  # fmt: skip
        i = wp.tid()
        row, taken_row = i * ints[0], i * flags[0]
        total, product = DT(0.0), DT(1.0)
        for j in range(wp.static(num_actions)):
            ls = clamp(log_std[row, j], log_std_low, log_std_high)
            if ints[0] == 1 or i == 0:
                log_std_out[row * wp.static(num_actions) + j] = ls
            mu = mean[i, j]
            if ints[1] == 1:
                mu = wp.clamp(mu, k[0, j], k[1, j])
            state = wp.rand_init(ints[3], i * wp.static(num_actions) + j)
            noise = DT(wp.randn(state))
            action, lp, extra, shown = element(mu, ls, noise, taken[taken_row, j], flags, k, j, eps)
            actions[i, j] = action
            mean_out[i, j] = shown
            entropy[i, j] = ls + DT(ENTROPY_CONSTANT) + extra
            if ints[2] == 0:
                log_prob[i, j] = lp
            total = total + lp
            if ints[2] == 3:
                # Only when asked for: an overflowing product would turn its zero adjoint into NaN.
                product = product * lp
        if ints[2] != 0:
            log_prob[i, 0] = reduce(total, product, ints[2])

    return gaussian_head


@functools.cache
def reduce_kernel(num_actions: int, dtype: Any) -> Any:
    """Reduce (N, A) values over the action axis into (N, 1); one thread per row.

    Args:
        num_actions: A, unrolled at compile time.
        dtype: ``wp.float32`` or ``wp.float64``.

    Returns:
        The kernel ``(values, reduction code, out)``.
    """
    DT = dtype
    reduce = _reduce_func(num_actions, dtype)

    @_unique(num_actions)
    def reduce_rows(values: wp.array2d(dtype=DT), reduction: int, out: wp.array2d(dtype=DT)):
        i = wp.tid()
        total = DT(0.0)
        product = DT(1.0)
        for j in range(wp.static(num_actions)):
            total = total + values[i, j]
            if reduction == 3:
                product = product * values[i, j]
        out[i, 0] = reduce(total, product, reduction)

    return reduce_rows


@functools.cache
def log_prob_kernel(dtype: Any) -> Any:
    """Element-wise log-density ``(x, mean, log_std, log_std per_row, out)`` over (N, A)."""
    DT = dtype
    log_density = scalar_funcs(dtype)[0]
    arr = wp.array2d(dtype=DT)

    @_unique()
    def gaussian_log_prob(x: arr, mean: arr, log_std: arr, per_row: int, out: arr):
        i, j = wp.tid()
        out[i, j] = log_density(x[i, j], mean[i, j], log_std[i * per_row, j])

    return gaussian_log_prob


@functools.cache
def unary_kernel(dtype: Any) -> Any:
    """Element-wise ``(x, op, out)``: op 0 entropy of a log-std, 1 entropy of a std, 2 tanh log-det."""
    DT = dtype
    tanh_log_det = scalar_funcs(dtype)[1]
    arr = wp.array2d(dtype=DT)

    @_unique()
    def unary(x: arr, op: int, out: arr):
        i, j = wp.tid()
        value = x[i, j]
        if op == 1:
            value = wp.log(value)
        if op == 2:
            value = tanh_log_det(value)
        else:
            value = value + DT(ENTROPY_CONSTANT)
        out[i, j] = value

    return unary


@functools.cache
def kl_kernel(dtype: Any) -> Any:
    """Element-wise KL(p || q) ``(mean_p, log_std_p, mean_q, log_std_q, per_row, out)``; per_row = (p, q)."""
    DT = dtype
    arr = wp.array2d(dtype=DT)

    @_unique()
    def gaussian_kl(mean_p: arr, log_std_p: arr, mean_q: arr, log_std_q: arr, per_row: wp.vec2i, out: arr):  # noqa: PLR0917
        i, j = wp.tid()
        lp = log_std_p[i * per_row[0], j]
        lq = log_std_q[i * per_row[1], j]
        delta = (mean_p[i, j] - mean_q[i, j]) * wp.exp(-lq)
        out[i, j] = lq - lp + DT(0.5) * (wp.exp(DT(2.0) * (lp - lq)) + delta * delta) - DT(0.5)

    return gaussian_kl


@functools.cache
def clip_kernel(dtype: Any) -> Any:
    """Element-wise ``out = clamp(x, low[j], high[j])`` over (N, A)."""
    arr = wp.array2d(dtype=dtype)

    @_unique()
    def clip(x: arr, bounds: arr, out: arr):
        i, j = wp.tid()
        out[i, j] = wp.clamp(x[i, j], bounds[0, j], bounds[1, j])

    return clip


@functools.cache
def random_kernel(dtype: Any) -> Any:
    """``(bounds, bounded, seed, out)``: uniform in ``[bounds[0, j], bounds[1, j])``, else standard normal."""
    DT = dtype
    arr = wp.array2d(dtype=DT)

    @_unique()
    def random_actions(bounds: arr, bounded: int, seed: int, out: arr):
        i, j = wp.tid()
        state = wp.rand_init(seed, i * out.shape[1] + j)
        if bounded == 1:
            out[i, j] = bounds[0, j] + (bounds[1, j] - bounds[0, j]) * DT(wp.randf(state))
        else:
            out[i, j] = DT(wp.randn(state))

    return random_actions


@functools.cache
def lerp_kernel(dtype: Any) -> Any:
    """In place ``target += polyak * (source - target)`` over flat arrays (not for a tape)."""
    DT = dtype

    @_unique()
    def lerp(target: wp.array(dtype=DT), source: wp.array(dtype=DT), polyak: DT):
        i = wp.tid()
        target[i] = target[i] + polyak * (source[i] - target[i])

    return lerp


@wp.kernel(module="unique")
def keep_unless_done(hidden: wp.array3d(dtype=float), done: wp.array(dtype=float), out: wp.array3d(dtype=float)):
    """``out = hidden * (1 - done[row])``: zero each recurrent state row whose episode ended."""
    layer, row, k = wp.tid()
    out[layer, row, k] = hidden[layer, row, k] * (1.0 - done[row])
