"""benchmarks/profile_training.py: each part gets exactly the time spent in it (a fake clock only the parts move)."""

from __future__ import annotations

import pytest
from benchmarks.profile_training import Profile, profile_config, report

from gaussrl.trainer.loop import Trainer

pytest.importorskip("torch")

COSTS = {"simulator step": 1.0, "simulator reset": 7.0, "wrapper": 0.5, "act": 0.25, "observe": 0.125, "update": 100.0}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def costing(self, function, seconds):
        """``function`` that moves this clock by ``seconds`` per call."""

        def call(*args, **kwargs):
            self.now += seconds
            return function(*args, **kwargs)

        return call


def _trainer(tmp_path, algo, timesteps, extra, clock):
    config = profile_config(algo, "Pendulum-v1", timesteps, str(tmp_path / algo), ("--eval-episodes", "1", *extra))
    trainer = Trainer(config)
    for env in trainer.env.env.envs:
        env.step = clock.costing(env.step, COSTS["simulator step"])
        env.reset = clock.costing(env.reset, COSTS["simulator reset"])
    trainer.env.step = clock.costing(trainer.env.step, COSTS["wrapper"])
    for name in ("act", "observe", "update"):
        setattr(trainer.agent, name, clock.costing(getattr(trainer.agent, name), COSTS[name]))
    trainer.evaluate = clock.costing(trainer.evaluate, 50.0)
    return trainer


def test_ppo_parts_from_the_start(tmp_path):
    clock = FakeClock()
    extra = ("--num-envs", "2", "--ppo.rollouts", "16", "--ppo.mini-batches", "2", "--no-tensorboard")
    profile = Profile(_trainer(tmp_path, "ppo", 64, extra, clock), clock=clock)
    profile.run()
    vector_steps = 32  # 64 steps of 2 envs; Pendulum's episodes (200 steps) never end here: no reset
    assert profile.window_steps == 64 and profile.window_s == vector_steps * (2 + 0.5 + 0.25 + 0.125) + 2 * 100
    assert profile.parts() == pytest.approx(
        {
            "simulator": 2 * vector_steps * 1.0,
            "env wrapper": vector_steps * 0.5,
            "act": vector_steps * 0.25,
            "update": 2 * 100.0,  # one update per 16 x 2 steps
            "storage": vector_steps * 0.125,
            "other": 0.0,
        }
    )
    assert profile.evaluation_s == 50.0  # the final evaluation, outside the window


def test_sac_window_opens_at_learning_starts(tmp_path):
    clock = FakeClock()
    extra = ("--sac.learning-starts", "20", "--sac.random-timesteps", "20", "--sac.batch-size", "8", "--no-tensorboard")
    profile = Profile(_trainer(tmp_path, "sac", 30, extra, clock), start_step=20, clock=clock)
    profile.run()
    # The window opens right after the 20th environment step: that step's observe (with the first
    # update) and steps 21-30 fall in it.
    assert profile.window_steps == 10
    parts = profile.parts()
    assert parts["simulator"] == pytest.approx(10.0) and parts["env wrapper"] == pytest.approx(5.0)
    assert parts["act"] == pytest.approx(2.5) and parts["update"] == pytest.approx(1100.0)
    assert parts["storage"] == pytest.approx(11 * 0.125) and parts["other"] == pytest.approx(0.0)
    text = report({"sac": profile}, "Pendulum-v1", "cmd")
    total = profile.window_s
    assert f"| update | 1100.00 | {100 * 1100 / total:.1f} | {1e6 * 1100 / 10:.0f} |" in text
    assert f"| total | {total:.2f} | 100.0 |" in text
    assert "10 timed env steps" in text and "One evaluation of 1 episodes took 50.0 s" in text
