"""The reuse of state-independent log-std terms never serves a stale or graph-less value."""

from __future__ import annotations

import math

import pytest
import torch

from tests.torch.test_model import Policy

ENTROPY_CONST = 0.5 + 0.5 * math.log(2 * math.pi)


def _rollout(policy):
    with torch.no_grad():
        _, outputs = policy.act({"observations": torch.zeros(3, 3)})
        return outputs["log_std"].clone(), policy.get_entropy().clone()


def test_optimizer_step_is_seen_by_the_next_rollout():
    policy = Policy()
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    before, _ = _rollout(policy)
    _, outputs = policy.act({"observations": torch.zeros(3, 3)})
    outputs["log_prob"].sum().backward()
    optimizer.step()
    after, entropy = _rollout(policy)
    torch.testing.assert_close(after, policy.log_std_parameter.detach())
    assert not torch.equal(before, after)
    torch.testing.assert_close(entropy[0], after + ENTROPY_CONST)


@pytest.mark.parametrize("write", ["no_grad_copy", "load_state_dict", "init_parameters", "update_parameters"])
def test_writes_to_the_parameter_are_seen(write):
    policy, other = Policy(), Policy()
    with torch.no_grad():
        other.log_std_parameter.fill_(0.3)
    _rollout(policy)
    if write == "no_grad_copy":
        with torch.no_grad():
            policy.log_std_parameter.copy_(torch.tensor([0.3, 0.3]))
    elif write == "load_state_dict":
        policy.load_state_dict(other.state_dict())
    elif write == "init_parameters":
        policy.init_parameters("constant_", 0.3)
    else:
        policy.update_parameters(other)
    log_std, entropy = _rollout(policy)
    torch.testing.assert_close(log_std, torch.tensor([0.3, 0.3]))
    torch.testing.assert_close(entropy, torch.full((3, 2), 0.3 + ENTROPY_CONST))


def test_every_training_call_builds_its_own_graph():
    policy = Policy()
    _rollout(policy)
    for weight in (1.0, 2.0, 3.0):
        policy.log_std_parameter.grad = None
        _, outputs = policy.act({"observations": torch.zeros(4, 3)})
        (outputs["log_prob"].sum() + weight * policy.get_entropy().sum()).backward()
        # d/dlog_std of a fresh sample's log-prob is -1 per row, of the entropy +1 per row.
        torch.testing.assert_close(policy.log_std_parameter.grad, torch.full((2,), 4.0 * (weight - 1.0)))


@pytest.mark.parametrize("reduction", ["sum", "mean", "prod", "none"])
@pytest.mark.parametrize("scored", [False, True])
@pytest.mark.parametrize("options", [{}, {"clip_actions": True}, {"clip_mean_actions": True}, {"squash_actions": True}])
def test_rollout_and_training_paths_agree(reduction, scored, options):
    """No-grad calls (cached log-std terms) and graph-building calls (recomputed) return the same numbers."""
    policy = Policy(reduction=reduction, **options)
    inputs = {"observations": torch.rand(16, 3) * 4 - 2}
    if scored:
        inputs["taken_actions"] = torch.rand(16, 2) * 0.8 + torch.tensor([-0.4, 0.5])
    results = []
    for grad in (False, True, False):
        torch.manual_seed(0)
        with torch.set_grad_enabled(grad):
            actions, outputs = policy.act(inputs)
            results.append((actions, outputs["log_prob"], outputs["log_std"], policy.get_entropy()))
    for reference, other in ((results[0], results[1]), (results[0], results[2])):
        for a, b in zip(reference, other, strict=True):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-6)


def test_returned_log_std_does_not_alias_the_parameter():
    """outputs["log_std"] kept across an optimizer step keeps the value it had (a rollout stores it)."""
    policy = Policy()
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    _, outputs = policy.act({"observations": torch.zeros(3, 3)})
    kept = outputs["log_std"].detach()
    before = kept.clone()
    outputs["log_prob"].sum().backward()
    optimizer.step()
    assert not torch.equal(policy.log_std_parameter.detach(), before)
    torch.testing.assert_close(kept, before, rtol=0, atol=0)
