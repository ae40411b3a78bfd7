"""The Warp GaussianMixin never returns a stale or aliased array; the warp_nn assumption it relies on."""

from __future__ import annotations

import numpy as np
import pytest
import warp as wp
from warp_nn import nn

from gaussrl.core import reference
from gaussrl.models.warp.recurrent import clear_output_cache
from tests.contract.adapters.warp_adapter import ADAPTER
from tests.contract.helpers import box, draw


def _inputs(call: int, n: int = 8, requires_grad: bool = False) -> tuple[dict[str, wp.array], np.ndarray]:
    """State-dependent inputs whose log-prob of the taken actions is known, and that log-prob."""
    mean, log_std, taken = draw(call, n=n), draw(call + 1, n=n, scale=0.3), draw(call + 2, n=n)
    obs = wp.array(np.concatenate([mean, log_std], 1), dtype=wp.float32, device="cpu", requires_grad=requires_grad)
    inputs = {"observations": obs, "taken_actions": wp.array(taken, dtype=wp.float32, device="cpu")}
    return inputs, reference.reduce_log_prob(reference.gaussian_log_prob(taken, mean, log_std), "sum")


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
    for call in range(12):
        policy.act(_inputs(call + 1)[0])
    after = _read(kept)
    for name in before if isinstance(before, dict) else [None]:
        np.testing.assert_array_equal(*((after, before) if name is None else (after[name], before[name])))


def test_every_call_returns_new_arrays_with_right_values():
    policy = ADAPTER.policy(box(), state_dependent=True)
    held = []
    for call in range(6):
        inputs, want = _inputs(call)
        _, outputs = policy.act(inputs)
        held.append((outputs["log_prob"], want))
    # Every earlier result still holds its own call's values: no later call wrote into it.
    for log_prob, want in held:
        np.testing.assert_allclose(log_prob.numpy(), want, rtol=1e-5, atol=4e-5)
    assert len({log_prob.ptr for log_prob, _ in held}) == len(held)


def _state_independent(value: float):
    policy = ADAPTER.policy(box(), state_dependent=False)
    policy.log_std_parameter.data.fill_(value)
    return policy


def _check_log_std(policy, value: float) -> None:
    mean = draw(5, n=6)
    actions, outputs = policy.act({"observations": wp.array(mean, dtype=wp.float32, device="cpu")})
    np.testing.assert_allclose(outputs["log_std"].numpy(), np.full(4, value), rtol=1e-6)
    np.testing.assert_allclose(policy.get_entropy().numpy(), np.full((6, 4), 0.5 + reference.LOG_SQRT_2PI + value))
    want = reference.reduce_log_prob(reference.gaussian_log_prob(actions.numpy(), mean, np.full(4, value)), "sum")
    np.testing.assert_allclose(outputs["log_prob"].numpy(), want, rtol=1e-5, atol=4e-5)


@pytest.mark.parametrize("write", ["fill", "numpy_view", "load_state_dict", "update_parameters"])
def test_every_way_of_writing_the_log_std_is_seen_by_the_next_act(write):
    policy, other = _state_independent(-0.5), _state_independent(0.3)
    for _ in range(2):
        _check_log_std(policy, -0.5)
    if write == "fill":
        policy.log_std_parameter.data.fill_(0.3)
    elif write == "numpy_view":
        policy.log_std_parameter.data.numpy()[:] = 0.3
    elif write == "load_state_dict":
        policy.load_state_dict(other.state_dict())
    else:
        policy.update_parameters(other)
    _check_log_std(policy, 0.3)


@pytest.mark.parametrize("key", ["actions", "log_std", "log_prob", "mean_actions", "entropy"])
def test_a_caller_modifying_a_result_in_place_changes_no_later_call(key):
    policy = _state_independent(-0.5)
    actions, outputs = policy.act({"observations": wp.array(draw(1, n=6), dtype=wp.float32, device="cpu")})
    result = {"actions": actions, "entropy": policy.get_entropy(), **outputs}[key]
    result.fill_(100.0)
    np.testing.assert_array_equal(policy.log_std_parameter.data.numpy(), np.full(4, -0.5, np.float32))
    _check_log_std(policy, -0.5)


def test_inside_a_tape_outputs_have_gradients():
    policy = ADAPTER.policy(box(), state_dependent=True)
    policy.act(_inputs(0)[0])
    inputs, _ = _inputs(1, requires_grad=True)
    tape = wp.Tape()
    with tape:
        actions, outputs = policy.act(inputs)
    assert all(x.requires_grad for x in (actions, *outputs.values()))
    tape.backward(grads={outputs["log_prob"]: wp.ones_like(outputs["log_prob"], requires_grad=False)})
    grad = inputs["observations"].grad.numpy()[:, 4:]
    log_std = inputs["observations"].numpy()[:, 4:]
    taken, mean = inputs["taken_actions"].numpy(), inputs["observations"].numpy()[:, :4]
    z = (taken - mean) * np.exp(-log_std)
    np.testing.assert_allclose(grad, z * z - 1.0, rtol=1e-5, atol=1e-5)  # d log N / d log_std


def test_warp_nn_still_caches_layer_outputs_where_clear_output_cache_expects():
    """``models/warp/recurrent.py`` relies on warp_nn's private ``_cache``; this fails if warp_nn changes it."""
    layer = nn.Linear(3, 2).to("cpu")
    x = wp.array(np.ones((4, 3), np.float32), dtype=wp.float32, device="cpu")
    first, second = layer(x), layer(x)
    assert first.ptr == second.ptr, "warp_nn no longer reuses a layer's outputs: recurrent.py may drop its cache clear"
    clear_output_cache(layer)
    assert layer(x).ptr != first.ptr
    with pytest.raises(RuntimeError, match="no output cache dict '_cache'"):
        clear_output_cache(object())
