"""TorchRL's ProbabilisticActor with an IndependentNormal on the same network (optional: pip install torchrl)."""

from __future__ import annotations

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.modules import IndependentNormal, ProbabilisticActor

from benchmarks.cases.common import ACTIONS, LOG_STD, observations
from benchmarks.cases.torch_case import torch_mlp


class _LocScale(nn.Module):
    """The network's mean with a state-independent scale, as TorchRL's (loc, scale) pair."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.log_std = nn.Parameter(torch.as_tensor(LOG_STD))

    def forward(self, observation):
        loc = self.net(observation)
        return loc, self.log_std.exp().expand_as(loc)


def _actor(net: nn.Module) -> ProbabilisticActor:
    module = TensorDictModule(_LocScale(net), in_keys=["observation"], out_keys=["loc", "scale"])
    return ProbabilisticActor(
        module,
        in_keys=["loc", "scale"],
        distribution_class=IndependentNormal,
        return_log_prob=True,
    )


def make_case(batch: int, seed: int = 0, identity: bool = False):
    net = torch_mlp(seed, identity)
    actor = _actor(net)
    x = torch.as_tensor(observations(batch)[:, : ACTIONS if identity else None])
    data = TensorDict({"observation": x}, batch_size=[batch])

    def run_act():
        with torch.no_grad():
            out = actor(data.clone(False))
            entropy = actor.get_dist(out).base_dist.entropy()
            return out["action"], out["action_log_prob"], entropy

    def run_forward():
        with torch.no_grad():
            return net(x)

    return run_act, run_forward
