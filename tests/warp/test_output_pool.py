"""The output-array rule of the Warp GaussianMixin: pooled arrays are reused only when nobody holds them."""

from __future__ import annotations

import numpy as np
import pytest
import warp as wp

from gaussrl.core import reference
from gaussrl.models import warp as gw
from gaussrl.models.warp import gaussian
from tests.contract.adapters.warp_adapter import ADAPTER
from tests.contract.helpers import box, draw


def _inputs(call: int, n: int = 8, requires_grad: bool = False) -> tuple[dict[str, wp.array], np.ndarray]:
    """State-dependent inputs whose log-prob of the taken actions is known, and that log-prob."""
    mean, log_std, taken = draw(call, n=n), draw(call + 1, n=n, scale=0.3), draw(call + 2, n=n)
    obs = wp.array(np.concatenate([mean, log_std], 1), dtype=wp.float32, device="cpu", requires_grad=requires_grad)
    inputs = {"observations": obs, "taken_actions": wp.array(taken, dtype=wp.float32, device="cpu")}
    return inputs, reference.reduce_log_prob(reference.gaussian_log_prob(taken, mean, log_std), "sum")


def _ptr(result: tuple[wp.array, dict[str, wp.array]]) -> int:
    return result[1]["log_prob"].ptr


def _read(kept: object) -> object:
    """A NumPy copy of what a caller kept: an array, a view of one, or the outputs dict."""
    if isinstance(kept, dict):
        return {name: value.numpy().copy() for name, value in kept.items()}
    return np.array(kept.numpy() if isinstance(kept, wp.array) else kept, copy=True)


@pytest.mark.parametrize(
    "keep",
    [
        lambda actions, outputs: actions,
        lambda actions, outputs: outputs,
        lambda actions, outputs: outputs["log_prob"].numpy(),
        lambda actions, outputs: outputs["log_std"][0],
        lambda actions, outputs: outputs["mean_actions"].reshape((-1,)),
    ],
    ids=["array", "outputs-dict", "numpy-view", "slice", "reshape"],
)
def test_a_result_held_in_any_form_is_never_overwritten(keep):
    policy = ADAPTER.policy(box(), state_dependent=True)
    kept = keep(*policy.act(_inputs(0)[0]))
    before = _read(kept)
    for call in range(3 * gaussian.POOL_SLOTS):
        policy.act(_inputs(call + 1)[0])
    after = _read(kept)
    for name in before if isinstance(before, dict) else [None]:
        np.testing.assert_array_equal(*((after, before) if name is None else (after[name], before[name])))


def test_arrays_nobody_holds_are_reused_and_results_stay_right():
    policy = ADAPTER.policy(box(), state_dependent=True)
    ptrs = set()
    for call in range(20):
        inputs, want = _inputs(call)
        _, outputs = policy.act(inputs)
        np.testing.assert_allclose(outputs["log_prob"].numpy(), want, rtol=1e-5, atol=4e-5)
        ptrs.add(outputs["log_prob"].ptr)
        del outputs
    # The model holds the last call's arrays for get_entropy(), so two sets take turns.
    assert len(ptrs) == 2


def test_when_every_pooled_set_is_held_calls_get_fresh_arrays():
    policy = ADAPTER.policy(box(), state_dependent=True)
    results = []
    for call in range(2 * gaussian.POOL_SLOTS):
        inputs, want = _inputs(call)
        results.append((policy.act(inputs), want))
    assert len({_ptr(result) for result, _ in results}) == len(results)
    for result, want in results:
        np.testing.assert_allclose(result[1]["log_prob"].numpy(), want, rtol=1e-5, atol=4e-5)


def test_many_input_layouts_empty_the_pool_without_touching_held_results():
    policy = ADAPTER.policy(box(), state_dependent=True)
    held = []
    for n in range(1, 3 * gaussian.POOL_LAYOUTS):
        inputs, want = _inputs(n, n=n)
        held.append((policy.act(inputs)[1]["log_prob"], want))
    assert len(policy._gaussian.pool) <= gaussian.POOL_LAYOUTS
    for log_prob, want in held:
        np.testing.assert_allclose(log_prob.numpy(), want, rtol=1e-5, atol=4e-5)


def test_inside_a_tape_outputs_are_fresh_arrays_with_gradients():
    policy = ADAPTER.policy(box(), state_dependent=True)
    policy.act(_inputs(0)[0])  # fills the pool outside the tape
    pooled = {slot.outputs[1].ptr for slots in policy._gaussian.pool.values() for slot in slots}
    inputs, _ = _inputs(1, requires_grad=True)
    tape = wp.Tape()
    with tape:
        actions, outputs = policy.act(inputs)
    assert all(x.requires_grad for x in (actions, *outputs.values()))
    assert outputs["log_prob"].ptr not in pooled
    tape.backward(grads={outputs["log_prob"]: wp.ones_like(outputs["log_prob"], requires_grad=False)})
    grad = inputs["observations"].grad.numpy()[:, 4:]
    log_std = inputs["observations"].numpy()[:, 4:]
    taken, mean = inputs["taken_actions"].numpy(), inputs["observations"].numpy()[:, :4]
    z = (taken - mean) * np.exp(-log_std)
    np.testing.assert_allclose(grad, z * z - 1.0, rtol=1e-5, atol=1e-5)  # d log N / d log_std


def test_a_tape_that_recorded_pooled_arrays_keeps_them():
    policy = ADAPTER.policy(box(), state_dependent=True)
    actions = policy.act(_inputs(0)[0])[0]
    ptr = actions.ptr
    tape = wp.Tape()
    with tape:
        gw.gaussian_entropy(actions)
    del actions
    ptrs = {policy.act(_inputs(call + 1)[0])[0].ptr for call in range(3 * gaussian.POOL_SLOTS)}
    assert ptr not in ptrs
    tape.reset()
    ptrs = {policy.act(_inputs(call + 1)[0])[0].ptr for call in range(3 * gaussian.POOL_SLOTS)}
    assert ptr in ptrs  # once the tape let go, the set went back to the pool
