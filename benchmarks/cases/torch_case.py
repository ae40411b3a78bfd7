"""gaussrl's torch GaussianMixin against the bare torch network."""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.cases.common import ACTIONS, LOG_STD, OBSERVATIONS, observations, weights
from gaussrl.models.torch import GaussianMixin, Model


def torch_mlp(seed: int = 0, identity: bool = False) -> nn.Module:
    if identity:
        return nn.Identity()
    layers: list[nn.Module] = []
    for index, (w, b) in enumerate(weights(seed)):
        linear = nn.Linear(*w.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(w.T))
            linear.bias.copy_(torch.as_tensor(b))
        layers += [linear, nn.Tanh()] if index < 2 else [linear]
    return nn.Sequential(*layers)


class Policy(GaussianMixin, Model):
    def __init__(self, net: nn.Module, num_observations: int):
        Model.__init__(self, observation_space=num_observations, action_space=ACTIONS, device="cpu")
        GaussianMixin.__init__(self)
        self.net = net
        self.log_std_parameter = nn.Parameter(torch.as_tensor(LOG_STD))

    def compute(self, inputs, role):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter}


def make_case(batch: int, seed: int = 0, identity: bool = False):
    """(run_act, run_forward): act() + get_entropy(), and the bare network forward, without grad."""
    net = torch_mlp(seed, identity)
    size = ACTIONS if identity else OBSERVATIONS
    policy = Policy(net, size)
    x = torch.as_tensor(observations(batch)[:, :size])
    inputs = {"observations": x}

    def run_act():
        with torch.no_grad():
            actions, outputs = policy.act(inputs, role="policy")
            return actions, outputs["log_prob"], policy.get_entropy(role="policy")

    def run_forward():
        with torch.no_grad():
            return net(x)

    return run_act, run_forward


def make_training_case(batch: int, seed: int = 0):
    """(run_train, run_forward_backward): act with taken_actions + backward of log-prob + entropy."""
    net = torch_mlp(seed)
    policy = Policy(net, OBSERVATIONS)
    x = torch.as_tensor(observations(batch))
    taken = torch.randn(batch, ACTIONS)
    inputs = {"observations": x, "taken_actions": taken}

    def run_train():
        _, outputs = policy.act(inputs, role="policy")
        (outputs["log_prob"].mean() + policy.get_entropy(role="policy").mean()).backward()

    def run_forward_backward():
        net(x).mean().backward()

    return run_train, run_forward_backward
