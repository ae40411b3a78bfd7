"""Warp-specific behaviour of GaussianMixin: one launch, fresh outputs, A > 16, pure functions, input errors."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import warp as wp
from gymnasium import spaces

from gaussrl.core import NotReadyError, reference
from gaussrl.core.spec import GaussianSpec, make_plan
from gaussrl.models import warp as gw
from gaussrl.models.warp.kernels import check_array
from tests.contract.adapters.warp_adapter import ADAPTER
from tests.contract.helpers import box, draw


def _array(x, dtype=wp.float32, requires_grad=False):
    return wp.array(x, dtype=dtype, device="cpu", requires_grad=requires_grad)


def _count_launches(monkeypatch):
    """Count wp.launch calls and replays of recorded launches (wp.Launch.launch)."""
    launches = []
    launch, replay = wp.launch, wp.Launch.launch
    monkeypatch.setattr(wp, "launch", lambda *args, **kwargs: launches.append(args[0]) or launch(*args, **kwargs))
    monkeypatch.setattr(wp.Launch, "launch", lambda self, *args: launches.append(self.kernel) or replay(self, *args))
    return launches


@pytest.mark.parametrize("recording", [False, True])
def test_act_is_one_kernel_launch(monkeypatch, recording):
    policy = ADAPTER.policy(box(), state_dependent=True, squash_actions=True, reduction="prod")
    obs = _array(draw(0, n=8, a=8), requires_grad=recording)
    inputs = {"observations": obs, "taken_actions": _array(np.tanh(draw(1, n=8)))}
    policy.act(inputs)  # compile first
    launches = _count_launches(monkeypatch)
    for _ in range(3):
        with wp.Tape() if recording else contextlib.nullcontext():
            policy.act(inputs)
    assert len(launches) == 3  # the observation slice is not a launch: compute() only returns views


def test_outputs_are_fresh_arrays_and_right_on_the_100th_call():
    policy = ADAPTER.policy(box(), state_dependent=True, reduction="sum")
    first = None
    for call in range(100):
        mean, log_std, taken = draw(call, n=8), draw(call + 1, n=8, scale=0.3), draw(call + 2, n=8)
        obs = _array(np.concatenate([mean, log_std], 1))
        _, outputs = policy.act({"observations": obs, "taken_actions": _array(taken)})
        first = first or (outputs["log_prob"], outputs["log_prob"].numpy().copy())
    want = reference.reduce_log_prob(reference.gaussian_log_prob(taken, mean, log_std), "sum")
    np.testing.assert_allclose(outputs["log_prob"].numpy(), want, rtol=1e-5, atol=4e-5)
    np.testing.assert_allclose(policy.get_entropy().numpy(), reference.gaussian_entropy(log_std), rtol=1e-5)
    np.testing.assert_array_equal(first[0].numpy(), first[1])  # the first call's output was not overwritten


@pytest.mark.parametrize("reduction", ["prod", "mean"])
def test_more_than_sixteen_actions_gradients_match_finite_differences(reduction):
    # A = 17 > Warp's default max_unroll (16): the kernels raise max_unroll so the product stays differentiable.
    n, a = 4, 17
    mean, taken, log_std = draw(2, n=n, a=a), draw(3, n=n, a=a), draw(4, n=n, a=a, scale=0.2)
    policy = ADAPTER.policy(a, state_dependent=True, reduction=reduction)
    _, outputs, grads = ADAPTER.grads(policy, mean, log_std, "log_prob", taken_actions=taken)
    plan = make_plan(GaussianSpec(reduction=reduction), a, a)
    noise = np.zeros((n, a))

    def total(m, s):
        return np.sum(reference.act(m, s, plan, noise, taken_actions=taken.astype(np.float64))[1]["log_prob"])

    m64, s64, h = mean.astype(np.float64), log_std.astype(np.float64), 1e-6
    for grad, base, f in (
        (grads["mean"], m64, lambda x: total(x, s64)),
        (grads["log_std"], s64, lambda x: total(m64, x)),
    ):
        fd = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            step = np.zeros_like(base)
            step[index] = h
            fd[index] = (f(base + step) - f(base - step)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=2e-4, atol=2e-4 * np.abs(fd).max())
    np.testing.assert_allclose(outputs["log_prob"], reference.reduce_log_prob(
        reference.gaussian_log_prob(taken, mean, log_std), reduction), rtol=1e-4)  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pure_functions_match_the_reference(dtype):
    rng = np.random.default_rng(0)
    x, mean, log_std, u = rng.normal(size=(4, 6, 3)).astype(dtype)
    shared = log_std[0]
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}
    wt = getattr(wp, dtype)
    got = gw.gaussian_log_prob(_array(x, wt), _array(mean, wt), _array(shared, wt)).numpy()
    np.testing.assert_allclose(got, reference.gaussian_log_prob(x, mean, shared), **tol)
    np.testing.assert_allclose(
        gw.gaussian_entropy(_array(shared, wt)).numpy(), reference.gaussian_entropy(shared), **tol
    )
    np.testing.assert_allclose(gw.tanh_log_det(_array(u, wt)).numpy(), reference.tanh_log_det(u), **tol)
    for reduction in ("sum", "mean", "prod", "none"):
        got = gw.reduce_log_prob(_array(x, wt), reduction).numpy()
        np.testing.assert_allclose(got, reference.reduce_log_prob(x, reduction), **tol)
        kl = gw.gaussian_kl(_array(x, wt), _array(shared, wt), _array(mean, wt), _array(log_std, wt), reduction)
        want = reference.reduce_log_prob(reference.gaussian_kl(x, shared, mean, log_std), reduction)
        np.testing.assert_allclose(kl.numpy(), want, **tol)


def test_get_entropy_of_a_given_stddev_and_before_act():
    policy = ADAPTER.policy(box())
    with pytest.raises(NotReadyError, match=r"get_entropy\(\) was called before any act\(\)"):
        policy.get_entropy()
    stddev = np.array([0.1, 0.5, 1.0, 3.0], np.float32)
    np.testing.assert_allclose(
        policy.get_entropy(_array(stddev)).numpy(), reference.gaussian_entropy(np.log(stddev)), rtol=1e-6
    )


def test_get_kl_divergence_against_the_last_call():
    policy = ADAPTER.policy(box(), reduction="sum")
    mean, log_std = draw(5, n=8), np.array([0.1, -0.2, 0.3, 0.0], np.float32)
    ADAPTER.act(policy, mean, log_std)
    other_mean, other_log_std = draw(6, n=8), np.zeros(4, np.float32)
    got = policy.get_kl_divergence(_array(other_mean), _array(other_log_std)).numpy()
    want = reference.reduce_log_prob(reference.gaussian_kl(other_mean, other_log_std, mean, log_std), "sum")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_inputs_that_are_not_warp_arrays():
    policy = ADAPTER.policy(box())
    with pytest.raises(
        TypeError, match=r'inputs\["observations"\] is a ndarray; the Warp backend expects a warp.array'
    ):
        policy.act({"observations": np.zeros((2, 4), np.float32)})
    with pytest.raises(TypeError, match=r'inputs\["observations"\] has dtype int32; expected float32'):
        policy.act({"observations": wp.zeros((2, 4), dtype=wp.int32, device="cpu")})
    with pytest.raises(TypeError, match=r'inputs\["taken_actions"\] is a list'):
        policy.act({"observations": _array(np.zeros((2, 4))), "taken_actions": [[0.0] * 4] * 2})


def test_inputs_on_another_device():
    class Elsewhere:
        __hash__ = object.__hash__

        def __eq__(self, other):
            return False

        def __str__(self):
            return "cuda:1"

    with pytest.raises(ValueError, match=r'x is on device "cpu"; expected the model\'s device "cuda:1"'):
        check_array("x", _array(np.zeros(3)), Elsewhere())


def test_bad_shapes_from_compute_and_taken_actions():
    policy = ADAPTER.policy(box(), state_dependent=True)
    obs = _array(np.zeros((4, 8)))
    with pytest.raises(ValueError, match=r'inputs\["taken_actions"\] has shape \(3, 4\); expected \(4, 4\)'):
        policy.act({"observations": obs, "taken_actions": _array(np.zeros((3, 4)))})
    policy.compute = lambda inputs, role: (_array(np.zeros((4, 4))), {"log_std": _array(np.zeros((3, 4)))})
    with pytest.raises(ValueError, match=r"log_std of shape \(3, 4\) for mean actions of shape \(4, 4\)"):
        policy.act({"observations": obs})
    policy.compute = lambda inputs, role: (np.zeros((4, 4), np.float32), {"log_std": _array(np.zeros(4))})
    with pytest.raises(TypeError, match=r"compute\(\)'s mean actions is a ndarray"):
        policy.act({"observations": obs})


def test_random_stream_is_fresh_per_call_and_seedable():
    policy = ADAPTER.policy(spaces.Box(-1, 1, (2,), np.float32))
    obs = {"observations": _array(np.zeros((1000, 2)))}
    policy.seed(7)
    first, second = (policy.act(obs)[0].numpy().copy() for _ in range(2))
    policy.seed(7)
    np.testing.assert_array_equal(policy.act(obs)[0].numpy(), first)
    assert not np.any(first == second)


def test_act_without_gradients_gives_the_same_values_and_no_gradient_arrays():
    """``requires_grad=False`` (the agents' rollout): the reference values, outputs without gradient arrays."""
    policy = ADAPTER.policy(box(), state_dependent=True, reduction="sum")
    mean, log_std, taken = draw(0, n=8), draw(1, n=8, scale=0.3), draw(2, n=8)
    obs = _array(np.concatenate([mean, log_std], 1), requires_grad=True)
    inputs = {"observations": obs, "taken_actions": _array(taken)}
    want = reference.reduce_log_prob(reference.gaussian_log_prob(taken, mean, log_std), "sum")
    for requires_grad in (True, False):
        actions, outputs = policy.act(inputs, requires_grad=requires_grad)
        np.testing.assert_allclose(outputs["log_prob"].numpy(), want, rtol=1e-5, atol=4e-5)
        arrays = [actions, outputs["log_prob"], outputs["log_std"], outputs["mean_actions"], policy.get_entropy()]
        assert [a.requires_grad for a in arrays] == [requires_grad] * 5
