"""Model backends: ``gaussrl.models.torch``, ``gaussrl.models.jax`` and ``gaussrl.models.warp``."""
