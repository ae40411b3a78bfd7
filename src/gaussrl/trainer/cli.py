"""The ``gaussrl`` command: ``train``, ``eval`` and ``plot``; options generated from the dataclasses by tyro.

Errors the user can fix (unknown environment, action space not a Box, missing or corrupt
checkpoint, resume directory of another run, invalid option values) are printed as one line
``gaussrl: error: ...`` with exit status 2, never as a traceback (set ``GAUSSRL_TRACEBACK=1`` to
see one).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

import tyro

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.core.errors import GaussrlError
from gaussrl.envs import is_gymnax_id
from gaussrl.envs.gymnasium import EnvError
from gaussrl.io.checkpoint import CheckpointError
from gaussrl.trainer.loop import ResumeError, TrainConfig, Trainer, build_agent
from gaussrl.trainer.presets import describe, env_from_args, train_defaults
from gaussrl.trainer.resume import flatten, resumed_config, typed_options
from gaussrl.trainer.rundir import load_run_checkpoint
from gaussrl.trainer.stops import Interrupted

USER_ERRORS = (GaussrlError, EnvError, CheckpointError, ResumeError, ValueError, TypeError, FileNotFoundError)


@dataclass(frozen=True, kw_only=True)
class EvalArgs:
    """Evaluate the latest checkpoint of a run and print the mean return."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run directory written by gaussrl train."""
    episodes: int = 20
    """Number of episodes."""
    stochastic: bool = False
    """Sample actions instead of taking the mean action."""
    checkpoint: int | None = None
    """The step of the checkpoint to evaluate; None: the newest."""


@dataclass(frozen=True, kw_only=True)
class PlotArgs:
    """Write learning_curve.png (episode return vs steps, with evaluation points) into a run directory."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run directory written by gaussrl train."""


def _tuples(data: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` a run was trained with, from its ``config.json``.

    Args:
        run_dir: Run directory.

    Returns:
        The configuration.

    Raises:
        CheckpointError: If ``config.json`` is missing or unreadable.
    """
    path = Path(run_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"cannot read {str(path)!r}: is {str(run_dir)!r} a gaussrl run directory? ({error})"
        ) from None
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    data = {k: v for k, v in data.items() if k in known}
    data["ppo"] = PPOConfig(**_tuples(data.get("ppo", {})))
    data["sac"] = SACConfig(**_tuples(data.get("sac", {})))
    return TrainConfig(**data)


def evaluate_run(
    run_dir: str | Path, *, episodes: int = 20, stochastic: bool = False, checkpoint: int | None = None
) -> tuple[float, int]:
    """Evaluate a checkpoint of a run.

    Args:
        run_dir: Run directory.
        episodes: Number of episodes.
        stochastic: Sample actions instead of taking the mean.
        checkpoint: The checkpoint's step; None: the newest.

    Returns:
        The mean return and the step of the checkpoint evaluated.
    """
    saved = read_run_config(run_dir)
    command = f"gaussrl eval {shlex.quote(str(run_dir))}"
    state, _, step = load_run_checkpoint(run_dir, checkpoint, device=saved.device, command=command)
    config = dataclasses.replace(saved, eval_episodes=episodes, out=str(run_dir), resume=None, tensorboard=False)
    from gaussrl.envs.gymnasium import TorchVecEnv, make_vector_env  # noqa: PLC0415
    from gaussrl.trainer.evaluate import Evaluator  # noqa: PLC0415

    env = TorchVecEnv(make_vector_env(config.env, config.envs), seed=config.seed, device=config.device)
    agent = build_agent(config, env)
    agent.load_state(state["agent"])
    evaluator = Evaluator(config.env, episodes, config.seed, config.device)
    try:
        returns = evaluator.run(agent, deterministic=not stochastic)
    finally:
        evaluator.close()
        env.close()
    return float(returns.mean()), step


def _trainer(config: TrainConfig) -> Any:
    """The Gymnasium training loop, or the compiled one for ``gymnax/<id>`` environments."""
    if is_gymnax_id(config.env):
        from gaussrl.trainer.compiled import CompiledTrainer  # noqa: PLC0415 (imports jax)

        return CompiledTrainer(config)
    return Trainer(config)


def _run(command: Any) -> int:
    if isinstance(command, TrainConfig):
        trainer = _trainer(command)
        note = describe(command.env)
        resumed_step = getattr(trainer, "resumed_step", None)  # the compiled gymnax trainer has none
        if resumed_step is not None:
            note = f"resuming {trainer.dir} from its checkpoint of step {resumed_step}"
        if note:
            print(f"gaussrl: {note}", file=sys.stderr)
        try:
            summary = trainer.run()
        finally:
            trainer.close()
        print(json.dumps(summary, indent=2))
        print(f"run directory: {trainer.dir}")
        return 0
    if isinstance(command, EvalArgs):
        mean, step = evaluate_run(
            command.run_dir, episodes=command.episodes, stochastic=command.stochastic, checkpoint=command.checkpoint
        )
        mode = "stochastic" if command.stochastic else "deterministic"
        print(f"mean return over {command.episodes} {mode} episodes of the checkpoint of step {step}: {mean:.2f}")
        return 0
    from gaussrl.trainer.plot import plot_run  # noqa: PLC0415

    print(f"wrote {plot_run(command.run_dir)}")
    return 0


def parse(args: Sequence[str]) -> TrainConfig | EvalArgs | PlotArgs:
    """Parse a command line; ``train``'s defaults include the preset of its ``--env``.

    Args:
        args: Command-line arguments without the program name.

    Returns:
        The parsed command; for ``train --resume DIR``, DIR's configuration with the options that may
        change on resume (see :mod:`gaussrl.trainer.resume`).
    """
    env_id = env_from_args(args)
    commands = Union[  # noqa: UP007 (tyro reads the subcommands from a typing.Union)
        Annotated[TrainConfig, tyro.conf.subcommand("train", default=train_defaults(env_id))],
        Annotated[EvalArgs, tyro.conf.subcommand("eval")],
        Annotated[PlotArgs, tyro.conf.subcommand("plot")],
    ]
    command = tyro.cli(
        commands,
        prog="gaussrl",
        description="Train, evaluate and plot Gaussian-policy agents (PPO, SAC) on Gymnasium tasks.",
        args=list(args),
    )
    if isinstance(command, TrainConfig) and command.resume is not None:
        # A resumed run trains with its own config.json; only some options typed here may change it.
        known = flatten(dataclasses.asdict(command))
        command = resumed_config(command, read_run_config(command.resume), typed_options(args, known), command.resume)
    return command


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gaussrl`` console script and ``python -m gaussrl``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        The exit status.
    """
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        return _run(parse(args))
    except USER_ERRORS as error:
        if os.environ.get("GAUSSRL_TRACEBACK"):
            raise
        message = " ".join(str(error).split())
        print(f"gaussrl: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        if isinstance(error, Interrupted):
            print(f"gaussrl: {error}", file=sys.stderr)
            return error.status
        print("gaussrl: interrupted", file=sys.stderr)
        return 130
