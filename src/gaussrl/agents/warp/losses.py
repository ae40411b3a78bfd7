"""The Warp agents' losses and advantage estimation as Warp kernels, each written once.

Loss kernels run one thread per sample and add each sample's share of the minibatch mean to a
one-element ``loss`` array with ``wp.atomic_add``, which ``wp.Tape`` differentiates; the same
threads add the unweighted terms to a ``metrics`` array (no gradient). The formulas are those of
the torch agents (:mod:`gaussrl.agents.torch.ppo`, :mod:`gaussrl.agents.torch.sac`).
"""

from __future__ import annotations

import warp as wp

from gaussrl.agents.schedules import KL_FACTOR, LR_BOUNDS, LR_FACTOR
from gaussrl.agents.warp.kernels import MODULE

f32 = wp.float32
Column = wp.array2d(dtype=f32)
"""A per-sample quantity, shape (N, 1)."""

PPO_METRICS = ("policy_loss", "value_loss", "entropy", "kl")
SAC_METRICS = ("critic_loss", "policy_loss", "alpha", "q_value")


@wp.kernel(module=MODULE)
def ppo_loss_kernel(  # noqa: PLR0917 (Warp kernels take positional arguments)
    log_prob: Column,
    old_log_prob: Column,
    advantages: Column,
    predicted: Column,
    old_values: Column,
    returns: Column,
    entropy: wp.array2d(dtype=f32),
    clips: wp.vec3,
    scales: wp.vec3,
    loss: wp.array1d(dtype=f32),
    metrics: wp.array1d(dtype=f32),
):
    """PPO's loss on one minibatch (Schulman et al., 2017, eq. 9), launched over N.

    ``clips`` = (ratio_clip, value_clip, clip_predicted_values as 0/1); ``scales`` =
    (entropy_loss_scale, value_loss_scale, 1 / N). Loss: ``-mean(min(r A, clip(r, 1 -+ eps) A))
    - c_H mean(sum_j H_j) + c_V mean((v - R)^2)``, ``v`` clipped around the rollout's value when
    asked (PPO2). Metrics 0-2: policy loss, value loss, entropy.
    """
    i = wp.tid()
    inv_n = scales[2]
    ratio = wp.exp(log_prob[i, 0] - old_log_prob[i, 0])
    advantage = advantages[i, 0]
    clipped = wp.clamp(ratio, 1.0 - clips[0], 1.0 + clips[0])
    surrogate = wp.min(advantage * ratio, advantage * clipped)
    value = predicted[i, 0]
    if clips[2] > 0.0:
        value = old_values[i, 0] + wp.clamp(value - old_values[i, 0], -clips[1], clips[1])
    error = value - returns[i, 0]
    wp.atomic_add(loss, 0, (scales[1] * error * error - surrogate) * inv_n)
    wp.atomic_add(metrics, 0, -surrogate * inv_n)
    wp.atomic_add(metrics, 1, error * error * inv_n)
    for j in range(entropy.shape[1]):
        if scales[0] > 0.0:
            wp.atomic_add(loss, 0, -scales[0] * entropy[i, j] * inv_n)
        wp.atomic_add(metrics, 2, entropy[i, j] * inv_n)


@wp.kernel(module=MODULE, enable_backward=False)
def mean_kernel(values: Column, scale: float, out: wp.array1d(dtype=f32), index: int):
    """``out[index] += scale * values[i]`` summed over i: a mean when ``scale = 1 / N``; launched over N."""
    i = wp.tid()
    wp.atomic_add(out, index, values[i, 0] * scale)


@wp.kernel(module=MODULE, enable_backward=False)
def gae_kernel(  # noqa: PLR0917
    rewards: Column,
    values: Column,
    dones: Column,
    last_values: Column,
    gamma: float,
    lam: float,
    advantages: Column,
    returns: Column,
):
    """GAE (Schulman et al., 2016, eq. 16), one thread per environment, backwards over time.

    Rows are (step, env) flattened: row ``t * N + j``. ``delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t``,
    ``A_t = delta_t + gamma lambda (1 - d_t) A_{t+1}``; writes A and ``R = A + V``.
    """
    j = wp.tid()
    n = last_values.shape[0]
    steps = rewards.shape[0] // n
    advantage = f32(0.0)
    next_value = last_values[j, 0]
    for back in range(steps):
        row = (steps - 1 - back) * n + j
        not_done = 1.0 - dones[row, 0]
        delta = rewards[row, 0] + gamma * not_done * next_value - values[row, 0]
        advantage = delta + gamma * lam * not_done * advantage
        advantages[row, 0] = advantage
        returns[row, 0] = advantage + values[row, 0]
        next_value = values[row, 0]


@wp.kernel(module=MODULE, enable_backward=False)
def moments_kernel(x: Column, sums: wp.array1d(dtype=wp.float64), power: int):
    """``sums[0] += x_i`` (power 1), or ``sums[1] += (x_i - sums[0] / N)^2`` (power 2), in float64; over N."""
    i = wp.tid()
    value = wp.float64(x[i, 0])
    if power == 1:
        wp.atomic_add(sums, 0, value)
    else:
        centered = value - sums[0] / wp.float64(x.shape[0])
        wp.atomic_add(sums, 1, centered * centered)


@wp.kernel(module=MODULE, enable_backward=False)
def standardize_kernel(x: Column, sums: wp.array1d(dtype=wp.float64), out: Column):
    """``(x - mean) / (std + 1e-8)`` with the unbiased std (torch's ``Tensor.std``); launched over N."""
    i = wp.tid()
    n = wp.float64(x.shape[0])
    mean = sums[0] / n
    std = wp.sqrt(sums[1] / (n - wp.float64(1.0)))
    out[i, 0] = f32((wp.float64(x[i, 0]) - mean) / (std + wp.float64(1e-8)))


@wp.kernel(module=MODULE, enable_backward=False)
def adapt_lr_kernel(kl: wp.array1d(dtype=f32), index: int, count: float, target: float, lr: wp.array1d(dtype=f32)):
    """The KL-adaptive rate on the device: :func:`gaussrl.agents.schedules.adapt_learning_rate`."""
    mean_kl = kl[index] / count
    if mean_kl > target * wp.static(KL_FACTOR):
        lr[0] = wp.max(lr[0] / wp.static(LR_FACTOR), wp.static(LR_BOUNDS[0]))
    elif mean_kl < target / wp.static(KL_FACTOR):
        lr[0] = wp.min(lr[0] * wp.static(LR_FACTOR), wp.static(LR_BOUNDS[1]))


@wp.kernel(module=MODULE, enable_backward=False)
def soft_target_kernel(  # noqa: PLR0917
    rewards: Column,
    terminated: Column,
    q1: Column,
    q2: Column,
    next_log_prob: Column,
    alpha: wp.array1d(dtype=f32),
    gamma: float,
    target: Column,
):
    """SAC's critic target ``r + gamma (1 - done) (min(Q1', Q2') - alpha log pi(a'|s'))``; launched over N."""
    i = wp.tid()
    soft_q = wp.min(q1[i, 0], q2[i, 0]) - alpha[0] * next_log_prob[i, 0]
    target[i, 0] = rewards[i, 0] + gamma * (1.0 - terminated[i, 0]) * soft_q


@wp.kernel(module=MODULE)
def critic_loss_kernel(  # noqa: PLR0917
    q1: Column, q2: Column, target: Column, inv_n: float, loss: wp.array1d(dtype=f32), metrics: wp.array1d(dtype=f32)
):
    """SAC's critic loss ``(mean((Q1 - y)^2) + mean((Q2 - y)^2)) / 2``; metrics 0 (loss) and 3 (mean Q1)."""
    i = wp.tid()
    e1 = q1[i, 0] - target[i, 0]
    e2 = q2[i, 0] - target[i, 0]
    term = 0.5 * (e1 * e1 + e2 * e2) * inv_n
    wp.atomic_add(loss, 0, term)
    wp.atomic_add(metrics, 0, term)
    wp.atomic_add(metrics, 3, q1[i, 0] * inv_n)


@wp.kernel(module=MODULE)
def actor_loss_kernel(  # noqa: PLR0917
    log_prob: Column,
    q1: Column,
    q2: Column,
    alpha: wp.array1d(dtype=f32),
    inv_n: float,
    loss: wp.array1d(dtype=f32),
    metrics: wp.array1d(dtype=f32),
):
    """SAC's policy loss ``mean(alpha log pi(a|s) - min(Q1, Q2)(s, a))``, a ~ pi; metric 1."""
    i = wp.tid()
    term = (alpha[0] * log_prob[i, 0] - wp.min(q1[i, 0], q2[i, 0])) * inv_n
    wp.atomic_add(loss, 0, term)
    wp.atomic_add(metrics, 1, term)


@wp.kernel(module=MODULE, enable_backward=False)
def temperature_grad_kernel(log_prob: Column, target_entropy: float, inv_n: float, grad: wp.array1d(dtype=f32)):
    """Gradient of ``-mean(log_alpha (log pi + target_entropy))`` w.r.t. log_alpha, added to ``grad[0]``."""
    i = wp.tid()
    wp.atomic_add(grad, 0, -(log_prob[i, 0] + target_entropy) * inv_n)


@wp.kernel(module=MODULE, enable_backward=False)
def alpha_kernel(log_alpha: wp.array1d(dtype=f32), alpha: wp.array1d(dtype=f32), metrics: wp.array1d(dtype=f32)):
    """``alpha = exp(log_alpha)``, detached for the step's losses; metric 2."""
    alpha[0] = wp.exp(log_alpha[0])
    metrics[2] = alpha[0]
