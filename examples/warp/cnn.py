"""A Gaussian policy over image observations (channels-last, as Gymnasium returns them), for Warp."""

import warp as wp
from warp_nn import nn

from gaussrl.models.warp import GaussianMixin, Model


@wp.kernel
def _channels_first(images: wp.array4d(dtype=float), out: wp.array4d(dtype=float)):
    n, h, w, c = wp.tid()
    out[n, c, h, w] = images[n, h, w, c]


class ReLU2D(nn.Module):
    """ReLU over (N, C, H, W) feature maps: warp_nn's activations take arrays of at most 3 dimensions."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()
        self.__post_init__()

    def __call__(self, x):
        n, c, h, w = x.shape
        return self.relu(x.reshape((n, c, h * w))).reshape(x.shape)


class CNN(GaussianMixin, Model):
    def __init__(self, observation_space, state_space, action_space, device, reduction="sum", **options):
        Model.__init__(self, observation_space=observation_space, state_space=state_space,
                       action_space=action_space, device=device)  # fmt: skip
        GaussianMixin.__init__(self, reduction=reduction, **options)

        height, width, channels = observation_space.shape
        self.features = nn.Sequential(
            nn.Conv2D(channels, 16, 3, stride=2),
            ReLU2D(),
            nn.Conv2D(16, 32, 3, stride=2),
            ReLU2D(),
            nn.Flatten(),
        )
        size = self.features(wp.zeros((1, channels, height, width), dtype=wp.float32, device=self.device)).shape[-1]
        self.net = nn.Sequential(nn.Linear(size, 64), nn.ReLU(), nn.Linear(64, self.num_actions), nn.Tanh())
        self.log_std_parameter = nn.Parameter(wp.zeros(self.num_actions, dtype=wp.float32, device=self.device))
        self.__post_init__()

    def compute(self, inputs, role):
        # Observations may arrive flattened (N, H*W*C) or as images (N, H, W, C); Conv2D wants (N, C, H, W).
        observations = inputs["observations"]
        height, width, channels = self.observation_space.shape
        images = observations.reshape((observations.shape[0], height, width, channels))
        # A plain kernel (not an in-place copy), so that wp.Tape carries gradients back to the observations.
        nchw = wp.empty((images.shape[0], channels, height, width), device=self.device, requires_grad=True)
        wp.launch(_channels_first, dim=images.shape, inputs=[images], outputs=[nchw], device=self.device)
        return self.net(self.features(nchw)), {"log_std": self.log_std_parameter.data}
