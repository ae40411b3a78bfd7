"""A Gaussian policy over image observations (channels-last, as Gymnasium returns them)."""

import torch
from torch import nn

from gaussrl.models.torch import GaussianMixin, Model


class CNN(GaussianMixin, Model):
    def __init__(self, observation_space, state_space, action_space, device, reduction="sum", **options):
        Model.__init__(
            self, observation_space=observation_space, state_space=state_space, action_space=action_space, device=device
        )
        GaussianMixin.__init__(self, reduction=reduction, **options)

        height, width, channels = observation_space.shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            size = self.features(torch.zeros(1, channels, height, width)).shape[-1]
        self.net = nn.Sequential(nn.Linear(size, 64), nn.ReLU(), nn.Linear(64, self.num_actions), nn.Tanh())
        self.log_std_parameter = nn.Parameter(torch.zeros(self.num_actions))

    def compute(self, inputs, role):
        # Observations may arrive flattened (N, H*W*C) or as images (N, H, W, C); Conv2d wants (N, C, H, W).
        images = inputs["observations"].view(-1, *self.observation_space.shape).permute(0, 3, 1, 2)
        return self.net(self.features(images)), {"log_std": self.log_std_parameter}
