"""The interface every backend adapter implements for the contract suite.

The test policy is the same on every backend: ``compute`` returns
``mean = observations[:, :A]`` and, for a state-independent policy, ``log_std`` = a
parameter of shape (A,) that :meth:`Backend.act` sets; for a state-dependent one,
``log_std = observations[:, A:2A]``. All arrays cross the interface as NumPy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]


class Backend(ABC):
    """NumPy-facing wrapper around one backend."""

    name: str
    has_distribution_state: bool = True
    """True when ``get_entropy()`` reads the last ``act()`` (torch, warp); JAX takes stddev explicitly."""

    @abstractmethod
    def policy(
        self,
        action_space: Any,
        *,
        state_dependent: bool = False,
        dtype: str = "float32",
        omit_log_std: bool = False,
        log_std_size: int | None = None,
        extras: dict[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Build the test policy; ``compute`` adds ``extras`` to its outputs; ``options`` go to ``GaussianMixin``."""

    @abstractmethod
    def act(
        self,
        policy: Any,
        mean: np.ndarray,
        log_std: np.ndarray,
        taken_actions: np.ndarray | None = None,
        role: str = "",
    ) -> tuple[np.ndarray, Arrays]:
        """Call ``policy.act``; ``log_std`` is (A,) (sets the parameter) or (N, A) (state-dependent)."""

    @abstractmethod
    def act_raw(self, policy: Any, mean: np.ndarray, log_std: np.ndarray) -> tuple[Any, dict[str, Any]]:
        """``policy.act`` with a state-independent log-std, its results as the backend returned them."""

    @abstractmethod
    def act_inputs(self, policy: Any, inputs: Arrays, role: str = "") -> tuple[np.ndarray, Arrays]:
        """Call ``policy.act`` with raw inputs (for shape errors)."""

    @abstractmethod
    def entropy(self, policy: Any, role: str = "") -> np.ndarray:
        """Per-dimension entropy of the last ``act()`` (JAX: from its returned log-std)."""

    @abstractmethod
    def seed(self, policy: Any, seed: int) -> None:
        """Make the policy's next samples reproducible from ``seed``."""

    @abstractmethod
    def grads(
        self,
        policy: Any,
        mean: np.ndarray,
        log_std: np.ndarray,
        of: str,
        taken_actions: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Arrays, Arrays]:
        """Gradient of ``sum(of)`` w.r.t. the mean input and the log-std (parameter or input).

        ``of`` is ``"log_prob"``, ``"entropy"`` or ``"actions"``, or several joined by ``"+"``
        (the gradient of the sum of their sums, all from one ``act()``). Returns the actions and
        outputs of that ``act()`` call and ``{"mean": ..., "log_std": ...}`` gradients.
        """

    @abstractmethod
    def kl(
        self, mean_p: np.ndarray, log_std_p: np.ndarray, mean_q: np.ndarray, log_std_q: np.ndarray, reduction: str
    ) -> np.ndarray:
        """The backend's exact Gaussian KL(p || q), reduced."""

    @abstractmethod
    def define_mixin_after_model(self) -> None:
        """Define a policy class whose bases list Model before GaussianMixin (must raise TypeError)."""

    @abstractmethod
    def init_mixin_before_model(self, action_space: Any) -> None:
        """Instantiate a policy whose __init__ calls GaussianMixin.__init__ first (must raise TypeError)."""

    @abstractmethod
    def deterministic(self, action_space: Any, x: np.ndarray, *, clip_actions: bool) -> np.ndarray:
        """Output of a DeterministicMixin model whose compute returns its observations."""
