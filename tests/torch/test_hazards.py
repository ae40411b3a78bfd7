"""No call of act() ever returns a stale or aliased value, whatever happened to the parameters or results before.

Every check computes the expected values from the parameter's current contents with float64
NumPy/SciPy, never from another act() call.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from tests.torch.test_model import Policy

ENTROPY_CONST = 0.5 + 0.5 * math.log(2 * math.pi)


def _rollout(policy, n=3):
    with torch.no_grad():
        _, outputs = policy.act({"observations": torch.zeros(n, 3)})
        return outputs, policy.get_entropy()


def _assert_current(policy, value):
    """A no-grad act() reports log_std == value, its entropy, and scores its sample with std = exp(value)."""
    observations = torch.rand(6, 3)
    with torch.no_grad():
        actions, outputs = policy.act({"observations": observations})
        entropy = policy.get_entropy()
        mean = policy.net(observations)
    np.testing.assert_allclose(outputs["log_std"].numpy(), np.full(2, value), rtol=1e-6)
    np.testing.assert_allclose(entropy.numpy(), np.full((6, 2), value + ENTROPY_CONST), rtol=1e-6)
    expected = stats.norm.logpdf(actions.double().numpy(), mean.double().numpy(), math.exp(value))
    np.testing.assert_allclose(outputs["log_prob"].numpy(), expected.sum(-1, keepdims=True), rtol=1e-5, atol=1e-5)


def _write_data(policy, other):
    with torch.no_grad():
        policy.log_std_parameter.data.fill_(0.3)


def _write_data_grad_enabled(policy, other):
    policy.log_std_parameter.data.fill_(0.3)


def _write_data_assign(policy, other):
    policy.log_std_parameter.data = torch.full((2,), 0.3)


def _load_state_dict(policy, other):
    policy.load_state_dict(other.state_dict())


def _load_state_dict_assign(policy, other):
    policy.load_state_dict({k: v.clone() for k, v in other.state_dict().items()}, assign=True)


def _update_parameters(policy, other):
    policy.update_parameters(other)


def _update_parameters_polyak(policy, other):
    with torch.no_grad():
        policy.log_std_parameter.fill_(-0.3)
    policy.update_parameters(other, polyak=0.5)  # halfway between -0.3 and 0.9: 0.3


def _inference_mode_write(policy, other):
    with torch.inference_mode():
        _rollout(policy)
    with torch.no_grad():
        policy.log_std_parameter.fill_(0.3)


WRITES = {
    "data_under_no_grad": _write_data,
    "data_with_grad_enabled": _write_data_grad_enabled,
    "data_assigned": _write_data_assign,
    "load_state_dict": _load_state_dict,
    "load_state_dict_assign": _load_state_dict_assign,
    "update_parameters": _update_parameters,
    "update_parameters_polyak": _update_parameters_polyak,
    "inference_mode_then_write": _inference_mode_write,
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_way_of_writing_the_log_std_is_seen_by_the_next_act(write):
    policy, other = Policy(), Policy()
    with torch.no_grad():
        other.log_std_parameter.fill_(0.9 if write == "update_parameters_polyak" else 0.3)
    for _ in range(2):  # a repeated rollout, as a collector runs it
        _rollout(policy)
    WRITES[write](policy, other)
    _assert_current(policy, 0.3)


def test_an_optimizer_step_is_seen_by_the_next_act():
    policy = Policy()
    optimizer = torch.optim.SGD([policy.log_std_parameter], lr=0.5)
    _rollout(policy)
    _, outputs = policy.act({"observations": torch.zeros(3, 3)})
    outputs["log_prob"].sum().backward()  # d/dlog_std of a fresh sample's log-prob is -1 per row: grad -3
    optimizer.step()
    _assert_current(policy, -0.5 + 0.5 * 3.0)


@pytest.mark.parametrize("key", ["log_std", "log_prob", "mean_actions", "entropy"])
@pytest.mark.parametrize("grad", [False, True])
def test_a_caller_modifying_a_result_in_place_changes_no_later_call(key, grad):
    policy = Policy()
    observations = torch.rand(3, 3)
    with torch.set_grad_enabled(grad):
        _, outputs = policy.act({"observations": observations})
        result = policy.get_entropy() if key == "entropy" else outputs[key]
        with torch.no_grad():
            if key == "entropy":
                result = result.contiguous()  # an expanded view cannot be written in place at all
            result.add_(100.0)
    assert torch.all(policy.log_std_parameter == -0.5)
    _assert_current(policy, -0.5)


def test_a_kept_result_keeps_its_value_across_an_optimizer_step():
    policy = Policy()
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    _, outputs = policy.act({"observations": torch.zeros(3, 3)})
    kept = outputs["log_std"].detach()
    before = kept.clone()
    outputs["log_prob"].sum().backward()
    optimizer.step()
    assert not torch.equal(policy.log_std_parameter.detach(), before)
    torch.testing.assert_close(kept, before, rtol=0, atol=0)


def test_each_training_call_builds_its_own_graph():
    policy = Policy()
    _rollout(policy)
    for weight in (1.0, 2.0, 3.0):
        policy.log_std_parameter.grad = None
        _, outputs = policy.act({"observations": torch.zeros(4, 3)})
        (outputs["log_prob"].sum() + weight * policy.get_entropy().sum()).backward()
        # d/dlog_std of a fresh sample's log-prob is -1 per row, of the entropy +1 per row.
        torch.testing.assert_close(policy.log_std_parameter.grad, torch.full((2,), 4.0 * (weight - 1.0)))


@pytest.mark.parametrize("options", [{}, {"clip_mean_actions": True, "clip_actions": True}, {"squash_actions": True}])
def test_inference_mode_first_then_a_training_call(options):
    """Nothing built under inference_mode (e.g. constants) is reused where a graph must save it."""
    policy = Policy(**options)
    inputs = {"observations": torch.rand(4, 3), "taken_actions": torch.rand(4, 2) * 0.5 + torch.tensor([-0.4, 0.5])}
    with torch.inference_mode():
        policy.act(inputs)
        policy.get_entropy()
    _, outputs = policy.act(inputs)
    (outputs["log_prob"].sum() + policy.get_entropy().sum()).backward()
    assert policy.log_std_parameter.grad is not None and torch.isfinite(policy.log_std_parameter.grad).all()
    assert policy.net.weight.grad is not None


def test_functional_call_uses_the_parameters_it_is_given():
    policy = Policy()
    _rollout(policy)
    params = {name: value.detach().clone() for name, value in policy.named_parameters()}
    params["log_std_parameter"] = torch.full((2,), 0.3)
    observations = torch.rand(5, 3)
    torch.manual_seed(3)
    actions, outputs = torch.func.functional_call(policy, params, ({"observations": observations},))
    mean = observations @ params["net.weight"].T + params["net.bias"]
    np.testing.assert_allclose(outputs["log_std"].detach().numpy(), [0.3, 0.3], rtol=1e-6)
    expected = stats.norm.logpdf(actions.detach().double().numpy(), mean.double().numpy(), math.exp(0.3))
    np.testing.assert_allclose(outputs["log_prob"].detach().numpy(), expected.sum(-1, keepdims=True), rtol=1e-5)
    _assert_current(policy, -0.5)  # the module's own parameter is untouched and used again


def test_act_under_vmap_scores_its_own_samples():
    """``torch.func.vmap`` needs ``randomness="different"`` (or ``"same"``) because act() samples."""
    policy = Policy()
    observations = torch.rand(4, 5, 3)

    def act(x):
        actions, outputs = policy.act({"observations": x})
        return actions, outputs["log_prob"], outputs["log_std"]

    with torch.no_grad():
        actions, log_prob, log_std = torch.func.vmap(act, randomness="different")(observations)
        mean = policy.net(observations)
    assert actions.shape == (4, 5, 2) and log_prob.shape == (4, 5, 1)
    np.testing.assert_allclose(log_std.numpy(), np.full((4, 2), -0.5), rtol=1e-6)
    expected = stats.norm.logpdf(actions.double().numpy(), mean.double().numpy(), math.exp(-0.5)).sum(-1, keepdims=True)
    np.testing.assert_allclose(log_prob.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert not torch.equal(actions[0], actions[1])  # each mapped call drew its own noise


def _eager_and(transformed, policy, inputs):
    results = []
    for run in (policy, transformed):
        torch.manual_seed(11)
        actions, outputs = run(inputs)
        results.append((actions, outputs["log_prob"], outputs["log_std"], outputs["mean_actions"]))
    return results


@pytest.mark.parametrize("options", [{}, {"squash_actions": True}, {"clip_actions": True, "reduction": "mean"}])
def test_jit_trace_gives_the_eager_numbers(options):
    policy = Policy(**options)
    inputs = {"observations": torch.rand(6, 3)}
    with torch.no_grad():
        traced = torch.jit.trace(policy, (inputs,), strict=False, check_trace=False)
        eager, jitted = _eager_and(traced, policy, inputs)
    for a, b in zip(eager, jitted, strict=True):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        policy.log_std_parameter.fill_(0.3)  # the traced graph reads the parameter, not a copy
        _, outputs = traced(inputs)
    np.testing.assert_allclose(outputs["log_std"].numpy(), [0.3, 0.3], rtol=1e-6)


@pytest.fixture
def keep_validate_args():
    """torch.compile itself switches off torch.distributions' argument validation process-wide; restore it."""
    before = torch.distributions.Distribution._validate_args
    yield
    torch.distributions.Distribution.set_default_validate_args(before)


@pytest.mark.usefixtures("keep_validate_args")
def test_torch_compile_gives_the_eager_numbers():
    """``aot_eager`` runs the captured graph through the same kernels and RNG as eager mode."""
    policy = Policy(squash_actions=True)
    inputs = {"observations": torch.rand(6, 3)}
    compiled = torch.compile(policy, backend="aot_eager", fullgraph=False)
    eager, fast = _eager_and(compiled, policy, inputs)
    for a, b in zip(eager, fast, strict=True):
        torch.testing.assert_close(a, b)
    fast[1].sum().backward()  # the compiled call's graph reaches the parameters
    assert policy.log_std_parameter.grad is not None
    with torch.no_grad():
        policy.log_std_parameter.fill_(0.3)
        _, outputs = compiled(inputs)
    np.testing.assert_allclose(outputs["log_std"].numpy(), [0.3, 0.3], rtol=1e-6)
