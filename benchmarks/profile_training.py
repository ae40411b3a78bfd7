"""Where the time of a ``gaussrl train`` run goes: simulator, env wrapper, act, update, storage, other.

    python -m benchmarks.profile_training [--env HalfCheetah-v5] [--algos ppo sac] [--ppo-steps 20000]
        [--sac-steps 3000] [--extra "--sac.hidden-sizes 256 256"] [--markdown benchmarks/results/mujoco/profile.md]

Each run is ``gaussrl train --algo A --env E`` (its preset and ``--extra`` included) on one torch
thread, through :class:`~gaussrl.trainer.loop.Trainer` unchanged: timers are wrapped around the
objects' methods from the outside (instance attributes), so the training loop itself is what users
run. The parts, each exclusive of the others:

- simulator: the Gymnasium environments' ``step``/``reset`` (MuJoCo and Gymnasium's wrappers);
- env wrapper: the rest of ``TorchVecEnv.step`` (action rescaling, NumPy/torch conversion, checks, episode counters);
- act: the agent's ``act`` (observation normalisation, policy and, for PPO, value forward, sampling);
- update: the agent's ``update`` (gradient steps);
- storage: the rest of the agent's ``observe`` (rollout/replay writes; PPO: truncation bootstrap values);
- other: everything else in the loop (the trainer's bookkeeping, metrics, TensorBoard).

PPO is timed from the start of training; SAC from ``learning_starts`` (its random steps run, untimed).
Periodic evaluations and checkpoints are off in the timed window; one deterministic evaluation
(``--eval-episodes``, 10 by default) runs after it and is reported with what 1M steps at
``--eval-interval 10000`` would spend evaluating.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import shlex
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from gymnasium.vector import SyncVectorEnv

from gaussrl.trainer.cli import parse
from gaussrl.trainer.loop import TrainConfig, Trainer

CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
CLOCK_NAMES = {"wall": "wall time", "cpu": "the main thread's CPU time"}
PARTS = ("simulator", "env wrapper", "act", "update", "storage", "other")
FULL_RUN, EVAL_INTERVAL = 1_000_000, 10_000
"""The evaluation cost is scaled to a run of this many steps evaluating at this interval."""
EVAL_EPISODES = 10


class Profile:
    """Timers around a :class:`Trainer`'s environment and agent, a window of steps and the final evaluation.

    Args:
        trainer: A trainer built with periodic evaluation off (``eval_interval=0``).
        start_step: The window opens once this many environment steps are done (0: at :meth:`run`).
        clock: ``time.perf_counter`` (wall time) or ``time.thread_time`` (this thread's CPU time, which
            other processes on a loaded machine do not inflate).
    """

    def __init__(self, trainer: Trainer, start_step: int = 0, clock: Callable[[], float] = time.perf_counter) -> None:
        self.trainer, self.start_step, self.clock = trainer, start_step, clock
        self.seconds: dict[str, float] = defaultdict(float)
        self.steps = 0
        self.window: list[float] = []  # [opened, closed]
        self.window_steps = 0
        self.evaluation_s = 0.0
        vector = trainer.env.env
        for env in vector.envs if isinstance(vector, SyncVectorEnv) else [vector]:
            self._wrap(env, "step", "simulator")
            self._wrap(env, "reset", "simulator")
        self._wrap(trainer.env, "step", "env", after=self._count)
        for name in ("act", "observe", "update"):
            self._wrap(trainer.agent, name, name)
        evaluate, clock = trainer.evaluate, self.clock

        def final_evaluation() -> Any:
            self._close()
            start = clock()
            try:
                return evaluate()
            finally:
                self.evaluation_s += clock() - start

        trainer.evaluate = final_evaluation  # type: ignore[method-assign]

    def _wrap(self, owner: Any, name: str, label: str, after: Callable[[], None] | None = None) -> None:
        original, seconds, clock = getattr(owner, name), self.seconds, self.clock

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += clock() - start
                if after is not None:
                    after()

        setattr(owner, name, timed)

    def _count(self) -> None:
        self.steps += self.trainer.env.num_envs
        if not self.window and self.steps >= self.start_step:
            self._open()

    def _open(self) -> None:
        self.seconds.clear()
        self.window = [self.clock()]
        self.window_steps = -self.steps

    def _close(self) -> None:
        if len(self.window) == 1:
            self.window.append(self.clock())
            self.window_steps += self.steps

    def run(self) -> dict[str, Any]:
        """Train (closing the trainer afterwards).

        Returns:
            The run's summary.
        """
        if self.start_step == 0:
            self._open()
        try:
            return self.trainer.run()
        finally:
            self.trainer.close()

    @property
    def window_s(self) -> float:
        """Seconds of the timed window."""
        return self.window[1] - self.window[0]

    def parts(self) -> dict[str, float]:
        """Seconds of each part in the window, exclusive of each other; they sum to :attr:`window_s`."""
        s = self.seconds
        parts = {
            "simulator": s["simulator"],
            "env wrapper": s["env"] - s["simulator"],
            "act": s["act"],
            "update": s["update"],
            "storage": s["observe"] - s["update"],
        }
        parts["other"] = self.window_s - sum(parts.values())
        return parts


def profile_config(algo: str, env_id: str, timesteps: int, out: str, extra: tuple[str, ...] = ()) -> TrainConfig:
    """``gaussrl train --algo A --env E [EXTRA]`` for ``timesteps`` steps, periodic evaluations and checkpoints off."""
    argv = ["train", "--algo", algo, "--env", env_id, "--timesteps", str(timesteps), "--out", out, "--threads", "1"]
    argv += ["--eval-episodes", str(EVAL_EPISODES), "--no-progress", *extra]
    config = parse([*argv, "--eval-interval", "0", "--checkpoint-interval", "0"])
    if not isinstance(config, TrainConfig):
        raise TypeError(f"expected a train command, got {config!r}")
    return config


def profile_run(algo: str, env_id: str, steps: int, extra: tuple[str, ...] = (), clock: str = "wall") -> Profile:
    """Profile ``steps`` timed steps of a run (SAC: after its ``learning_starts``) in a temporary directory."""
    start = 0
    if algo == "sac":
        start = profile_config(algo, env_id, 1, "unused", extra).sac.learning_starts
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(profile_config(algo, env_id, start + steps, out, extra))
        profile = Profile(trainer, start_step=start, clock=CLOCKS[clock])
        profile.run()
    return profile


def report(profiles: dict[str, Profile], env_id: str, command: str, clock: str = "wall") -> str:
    """The Markdown table: seconds, share and microseconds per env step of each part."""
    header = " | ".join(f"{a.upper()} s | {a.upper()} % | {a.upper()} us/step" for a in profiles)
    lines = [
        f"# Where the training time goes: {env_id}, one CPU thread, {CLOCK_NAMES[clock]}",
        "",
        f"`{command}`",
        "",
        f"| part | {header} |",
        "|---|" + "---|---|---|" * len(profiles),
    ]
    parts = {algo: profile.parts() for algo, profile in profiles.items()}
    for part in (*PARTS, "total"):
        cells = []
        for algo, profile in profiles.items():
            seconds = profile.window_s if part == "total" else parts[algo][part]
            share, per_step = 100.0 * seconds / profile.window_s, 1e6 * seconds / profile.window_steps
            cells.append(f"{seconds:.2f} | {share:.1f} | {per_step:.0f}")
        lines.append(f"| {part} | {' | '.join(cells)} |")
    lines.append("")
    for algo, profile in profiles.items():
        rate = profile.window_steps / profile.window_s
        config = profile.trainer.config
        evaluations = FULL_RUN // EVAL_INTERVAL * profile.evaluation_s
        training = FULL_RUN / rate
        lines.append(
            f"- {algo.upper()}: {profile.window_steps} timed env steps, {rate:.0f} env steps per second of "
            f"{CLOCK_NAMES[clock]} (num_envs={config.envs}). One evaluation of {config.eval_episodes} episodes took "
            f"{profile.evaluation_s:.1f} s: a {FULL_RUN}-step run evaluating every {EVAL_INTERVAL} steps spends "
            f"{evaluations / 3600:.2f} h evaluating beside {training / 3600:.2f} h training at this rate."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Profile, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--algos", nargs="+", default=["ppo", "sac"], choices=["ppo", "sac"])
    parser.add_argument("--ppo-steps", type=int, default=20_000)
    parser.add_argument("--sac-steps", type=int, default=3_000, help="timed steps after learning_starts")
    parser.add_argument("--extra", default="", help='more gaussrl train options, e.g. "--sac.hidden-sizes 256 256"')
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall", help="cpu: this thread's CPU time")
    parser.add_argument("--markdown", type=Path, default=Path("benchmarks/results/mujoco/profile.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    extra = tuple(shlex.split(args.extra))
    steps = {"ppo": args.ppo_steps, "sac": args.sac_steps}
    profiles = {algo: profile_run(algo, args.env, steps[algo], extra, args.clock) for algo in args.algos}
    command = (
        f"python -m benchmarks.profile_training --env {args.env} --algos {' '.join(args.algos)}"
        + "".join(f" --{algo}-steps {steps[algo]}" for algo in args.algos)
        + f" --clock {args.clock}"
        + (f" --extra {shlex.quote(args.extra)}" if args.extra else "")
    )
    text = report(profiles, args.env, command, args.clock)
    print(text)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
