"""The pieces of data-parallel training that run in one process: moment merging, state transport, messages."""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gaussrl.agents.torch.distributed import (
    EXCHANGE_MAX_RANKS,
    SyncedReturnNormalizer,
    SyncedScaler,
    World,
    merge_moments,
)
from gaussrl.agents.torch.memory import RunningStandardScaler
from gaussrl.core.errors import DistributedError
from gaussrl.io.checkpoint import save_checkpoint
from gaussrl.trainer.distributed import describe_failures, pack, rank_seed, unpack
from gaussrl.trainer.loop import ResumeError, TrainConfig, load_resume


def test_merge_moments_equals_numpy_on_the_union():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 2.0, size=(50, 4)), rng.normal(-1.0, 0.5, size=(7, 4))
    count, mean, var = merge_moments((50.0, a.mean(0), a.var(0)), (7.0, b.mean(0), b.var(0)))
    union = np.concatenate([a, b])
    assert count == 57.0
    np.testing.assert_allclose(mean, union.mean(0), rtol=1e-12)
    np.testing.assert_allclose(var, union.var(0), rtol=1e-12)
    empty = (0.0, np.zeros(4), np.ones(4))
    assert merge_moments(empty, (7.0, b.mean(0), b.var(0)))[0] == 7.0
    np.testing.assert_array_equal(merge_moments((7.0, b.mean(0), b.var(0)), empty)[1], b.mean(0))


class GatheredWorld(World):
    """Rank 0 of 2 whose ``all_gather`` returns given parts (what both ranks would contribute)."""

    def __init__(self, parts: list[torch.Tensor]) -> None:
        super().__init__(rank=0, size=2)
        object.__setattr__(self, "parts", parts)

    def all_gather(self, tensor: torch.Tensor, what: str) -> list[torch.Tensor]:
        return self.parts  # type: ignore[attr-defined, no-any-return]


def test_synced_scalers_end_with_the_statistics_of_every_rank_s_samples():
    rng = np.random.default_rng(1)
    scalers = [SyncedScaler(3), SyncedScaler(3)]
    seen = []
    for round_ in range(3):
        for rank, scaler in enumerate(scalers):
            for _ in range(4):
                batch = rng.normal(rank + round_, 1.0 + rank, size=(5, 3))
                scaler.update(torch.from_numpy(batch))
                seen.append(batch)
        parts = [torch.cat([s.pending.count.reshape(1), s.pending.mean, s.pending.var]) for s in scalers]
        for scaler in scalers:
            scaler.sync(GatheredWorld(parts))
        data = np.concatenate(seen)
        for scaler in scalers:
            assert float(scaler.count) == len(data)
            np.testing.assert_allclose(scaler.mean.numpy(), data.mean(0), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(scaler.var.numpy(), data.var(0), rtol=1e-12)
        np.testing.assert_array_equal(scalers[0].mean.numpy(), scalers[1].mean.numpy())
        np.testing.assert_array_equal(scalers[0].var.numpy(), scalers[1].var.numpy())


class Exchange:
    """What the collectives of ``size`` ranks, run as threads of this process, contribute and receive."""

    def __init__(self, size: int) -> None:
        self.slots: list[torch.Tensor | None] = [None] * size
        self.barrier = threading.Barrier(size, timeout=30)
        self.ranks: dict[int, int] = {}
        self.calls = 0

    def gather(self, rank: int, tensor: torch.Tensor) -> list[torch.Tensor]:
        self.slots[rank] = tensor.clone()
        self.barrier.wait()
        parts = [t.clone() for t in self.slots if t is not None]
        self.barrier.wait()
        self.calls += rank == 0
        return parts

    def run(self, *jobs):
        """Run one job per rank in its own thread; their results in rank order."""
        results: list = [None] * len(jobs)

        def target(rank: int) -> None:
            self.ranks[threading.get_ident()] = rank
            results[rank] = jobs[rank]()

        threads = [threading.Thread(target=target, args=(rank,)) for rank in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results


class ThreadWorld(World):
    """Rank ``rank`` of 2 whose ``all_gather`` goes through an :class:`Exchange`."""

    def __init__(self, rank: int, exchange: Exchange) -> None:
        super().__init__(rank=rank, size=2)
        object.__setattr__(self, "exchange", exchange)

    def all_gather(self, tensor: torch.Tensor, what: str) -> list[torch.Tensor]:
        return self.exchange.gather(self.rank, tensor)  # type: ignore[attr-defined, no-any-return]


def test_mean_std_of_two_ranks_is_numpy_s_on_the_union_and_merges_a_scaler_in_the_same_collective():
    rng = np.random.default_rng(2)
    values = [rng.normal(3.0, 2.0, size=(40, 1)), rng.normal(-1.0, 0.5, size=(40, 1))]
    returns = [rng.normal(5.0, 1.0, size=(40, 1)), rng.normal(0.0, 3.0, size=(40, 1))]
    scalers = [SyncedScaler(1), SyncedScaler(1)]
    for scaler, batch in zip(scalers, returns, strict=True):
        scaler.update(torch.from_numpy(batch))
    exchange = Exchange(2)
    worlds = [ThreadWorld(rank, exchange) for rank in (0, 1)]
    results = exchange.run(
        *(lambda r=r: worlds[r].mean_std(torch.tensor(values[r], dtype=torch.float32), scalers[r]) for r in (0, 1))
    )
    union = np.concatenate(values).astype(np.float32).astype(np.float64)
    assert exchange.calls == 1
    for mean, std in results:
        assert mean.dtype == torch.float32 and mean.shape == ()
        np.testing.assert_allclose(float(mean), union.mean(), rtol=1e-6)
        np.testing.assert_allclose(float(std), union.std(ddof=1), rtol=1e-6)
        assert torch.equal(mean, results[0][0]) and torch.equal(std, results[0][1])
    both = np.concatenate(returns)
    for scaler in scalers:
        np.testing.assert_allclose(scaler.mean.numpy(), both.mean(0), rtol=1e-12)
        np.testing.assert_allclose(scaler.var.numpy(), both.var(0), rtol=1e-12)


def fake_collectives(monkeypatch, exchange: Exchange) -> dict[str, int]:
    """torch.distributed's all_reduce, isend and irecv between the threads of ``exchange``; the calls made."""
    mailboxes: dict[tuple[int, int], queue.Queue] = {}
    calls = {"all_reduce": 0, "isend": 0, "irecv": 0}

    def rank() -> int:
        return exchange.ranks[threading.get_ident()]

    def box(source: int, destination: int) -> queue.Queue:
        return mailboxes.setdefault((source, destination), queue.Queue())

    def all_reduce(tensor, group=None, async_op=False):
        calls["all_reduce"] += rank() == 0
        tensor.copy_(sum(exchange.gather(rank(), tensor)))
        return SimpleNamespace(wait=lambda: True) if async_op else None

    def isend(tensor, dst, group=None):
        calls["isend"] += rank() == 0
        box(rank(), dst).put(tensor.clone())
        return SimpleNamespace(wait=lambda: True)

    def irecv(tensor, src, group=None):
        calls["irecv"] += rank() == 0
        mailbox = box(src, rank())
        return SimpleNamespace(wait=lambda: tensor.copy_(mailbox.get(timeout=30)))

    for name, function in (("all_reduce", all_reduce), ("isend", isend), ("irecv", irecv)):
        monkeypatch.setattr(torch.distributed, name, function)
    return calls


@pytest.mark.parametrize("size", [2, 3, EXCHANGE_MAX_RANKS + 1])
def test_gradients_and_extra_values_are_averaged_in_one_collective(monkeypatch, size):
    exchange = Exchange(size)
    calls = fake_collectives(monkeypatch, exchange)
    rng = np.random.default_rng(3)
    grads = [[rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)] for _ in range(size)]
    extras = [rng.normal(size=5).astype(np.float32) for _ in range(size)]
    parameters = [[torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(4))] for _ in range(size)]
    for rank in range(size):
        for parameter, grad in zip(parameters[rank], grads[rank], strict=True):
            parameter.grad = torch.from_numpy(grad.copy())

    def job(rank: int):
        return World(rank=rank, size=size).average_gradients(parameters[rank], also=torch.from_numpy(extras[rank]))

    averaged = exchange.run(*(lambda r=r: job(r) for r in range(size)))
    exchanged = size <= EXCHANGE_MAX_RANKS
    want = {"all_reduce": 0, "isend": size - 1, "irecv": size - 1} if exchanged else {"all_reduce": 1, "isend": 0}
    assert calls == {"irecv": 0, **want}
    for rank in range(size):
        # The mean of the ranks' float32 values: the sum in rank order, divided by the rank count.
        np.testing.assert_allclose(averaged[rank].numpy(), np.mean(extras, axis=0), rtol=1e-6)
        np.testing.assert_array_equal(averaged[rank].numpy(), averaged[0].numpy())  # the same bits on every rank
        for index, parameter in enumerate(parameters[rank]):
            np.testing.assert_allclose(parameter.grad.numpy(), np.mean([g[index] for g in grads], 0), rtol=1e-6)
            np.testing.assert_array_equal(parameter.grad.numpy(), parameters[0][index].grad.numpy())
    if size == 2:
        np.testing.assert_array_equal(averaged[0].numpy(), (extras[0] + extras[1]) / np.float32(2))
    assert World().average_gradients(parameters[0], also=torch.ones(2)).tolist() == [1.0, 1.0]


def test_synced_scaler_state_round_trip_keeps_pending_and_merged():
    scaler = SyncedScaler(2)
    scaler.update(torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=torch.float64))
    restored = SyncedScaler(2)
    restored.load_state(scaler.state())
    for a, b in ((scaler, restored), (scaler.pending, restored.pending), (scaler.merged, restored.merged)):
        for key in ("mean", "var", "count"):
            assert torch.equal(getattr(a, key), getattr(b, key))


def test_synced_reward_scales_end_with_the_std_of_every_rank_s_returns_in_one_collective():
    """Each rank's discounted returns, recomputed here with a plain loop, pooled over both ranks."""
    rng = np.random.default_rng(3)
    discount, steps, num_envs = 0.9, 6, 2
    normalizers = [SyncedReturnNormalizer(num_envs, discount) for _ in range(2)]
    scalers = [SyncedScaler(3), SyncedScaler(3)]
    exchange = Exchange(2)
    worlds = [ThreadWorld(rank, exchange) for rank in (0, 1)]
    pooled: list[float] = []
    running = [np.zeros(num_envs), np.zeros(num_envs)]
    for round_ in range(2):
        for rank in (0, 1):
            for step in range(steps):
                rewards = rng.normal(3.0 * rank - round_, 1.0 + rank, size=(num_envs, 1))
                dones = np.array([[step == 2], [False]])
                normalizers[rank](rewards, dones)
                scalers[rank].update(torch.from_numpy(rng.normal(size=(num_envs, 3))))
                for env in range(num_envs):
                    running[rank][env] = discount * running[rank][env] + rewards[env, 0]
                    pooled.append(running[rank][env])
                    if dones[env, 0]:
                        running[rank][env] = 0.0
        exchange.run(*(lambda r=r: worlds[r].sync(scalers[r], None, normalizers[r]) for r in (0, 1)))
        assert exchange.calls == round_ + 1  # the scalers and the reward scales share one collective
        for normalizer in normalizers:
            assert normalizer.moments.count == len(pooled)
            np.testing.assert_allclose(normalizer.moments.mean, [np.mean(pooled)], rtol=1e-12)
            np.testing.assert_allclose(normalizer.moments.var, [np.var(pooled)], rtol=1e-12)
        np.testing.assert_array_equal(normalizers[0].moments.var, normalizers[1].moments.var)
        np.testing.assert_array_equal(scalers[0].mean.numpy(), scalers[1].mean.numpy())


def test_synced_reward_scale_state_round_trip_keeps_pending_merged_and_returns():
    normalizer = SyncedReturnNormalizer(2, 0.99)
    normalizer(np.array([[1.0], [2.0]]), np.array([[False], [True]]))
    restored = SyncedReturnNormalizer(2, 0.99)
    restored.load_state(normalizer.state())
    np.testing.assert_array_equal(restored.returns, normalizer.returns)
    for a, b in ((normalizer.moments, restored.moments), (normalizer.pending, restored.pending)):
        assert (a.count, a.mean.tolist(), a.var.tolist()) == (b.count, b.mean.tolist(), b.var.tolist())
    assert restored.merged.count == 0.0 and restored.pending.count == 2.0
    plain = World().return_normalizer(2, 0.99)
    plain(np.array([[1.0], [2.0]]), np.array([[False], [False]]))
    from_one_rank = SyncedReturnNormalizer(2, 0.99)
    from_one_rank.load_state(plain.state())  # a one-rank checkpoint resumed on several ranks: taken as merged
    assert from_one_rank.merged.count == 2.0 and from_one_rank.pending.count == 0.0
    assert type(plain) is not SyncedReturnNormalizer


def test_one_rank_world_is_the_identity():
    world = World()
    values = torch.randn(10)
    assert world.mean(values) is values
    mean, std = world.mean_std(values)
    assert torch.equal(mean, values.mean()) and torch.equal(std, values.std())
    assert type(world.scaler(3, "cpu")) is RunningStandardScaler
    assert world.is_main


def test_pack_round_trip_without_pickle():
    state = {"a": torch.arange(5), "b": [1, 2.5, None, "x", {"c": torch.ones(2, 3)}], 3: {"d": True}}
    back = unpack(pack(state))
    assert torch.equal(back["a"], state["a"]) and torch.equal(back["b"][4]["c"], state["b"][4]["c"])
    assert back["b"][:4] == [1, 2.5, None, "x"] and back[3] == {"d": True}


def test_rank_seeds_differ_and_are_reproducible():
    seeds = {rank_seed(seed, rank) for seed in range(3) for rank in range(1, 4)}
    assert len(seeds) == 9 and rank_seed(0, 1) == rank_seed(0, 1)


def _failure(exitcode: int, name: str = "") -> SimpleNamespace:
    return SimpleNamespace(exitcode=exitcode, signal_name=lambda: name)


def test_describe_failures_names_the_rank_that_failed_first():
    text = describe_failures({0: _failure(-15, "SIGTERM"), 1: _failure(-9, "SIGKILL"), 2: _failure(143)})
    assert text == "rank 1 exited with signal SIGKILL; the launcher then stopped ranks 0, 2."
    assert (
        describe_failures({0: _failure(2), 1: _failure(2)})
        == "rank 0 exited with status 2, rank 1 exited with status 2."
    )
    # A rank that found the other gone (exit status 3) before the launcher stopped it comes second.
    assert (
        describe_failures({0: _failure(3), 1: _failure(-9, "SIGKILL")})
        == "rank 1 exited with signal SIGKILL; rank 0 then lost contact and stopped."
    )
    assert (
        describe_failures({0: _failure(3), 1: _failure(1), 2: _failure(-15, "SIGTERM"), 3: _failure(3)})
        == "rank 1 exited with status 1; ranks 0, 3 then lost contact and stopped; the launcher then stopped rank 2."
    )
    # A rank that hung: the others time out (status 3) and the launcher stops it.
    assert (
        describe_failures({0: _failure(3), 1: _failure(-15, "SIGTERM")})
        == "rank 0 exited with status 3; the launcher then stopped rank 1."
    )


def test_resume_with_another_rank_count_is_a_one_line_error(tmp_path):
    meta = {"algo": "ppo", "env": "Pendulum-v1", "policy": "mlp", "num_envs": 4, "world_size": 2}
    config = TrainConfig(resume=str(tmp_path / "run"))
    for name in ("run", "one"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config.to_json()))
    save_checkpoint(tmp_path / "run" / "checkpoints", 10, {"steps": 10}, meta)
    message = r"on 1 rank\(s\): it holds a 2-rank run.*resume it with --nproc 2 \(or torchrun"
    with pytest.raises(ResumeError, match=message):
        load_resume(config, world_size=1)
    assert load_resume(config, world_size=2)[1]["world_size"] == 2
    with pytest.raises(ResumeError, match="holds a 1-rank run"):
        save_checkpoint(tmp_path / "one" / "checkpoints", 10, {"steps": 10}, {**meta, "world_size": 1})
        load_resume(dataclasses.replace(config, resume=str(tmp_path / "one")), world_size=3)


def test_nproc_and_dist_timeout_must_be_positive():
    with pytest.raises(ValueError, match="nproc"):
        TrainConfig(nproc=0)
    with pytest.raises(ValueError, match=r"dist_timeout=0.0 must be > 0 seconds \(default 300.0\)"):
        TrainConfig(dist_timeout=0.0)


def test_a_failed_collective_is_a_one_line_distributed_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("[gloo] Timed out waiting 5000ms for recv operation to complete\nsecond line")

    for name in ("all_reduce", "isend", "irecv"):  # the ring all-reduce, or the exchange of up to 4 ranks
        monkeypatch.setattr(torch.distributed, name, broken)
    parameter = torch.nn.Parameter(torch.ones(3))
    parameter.grad = torch.ones(3)
    with pytest.raises(DistributedError) as caught:
        World(rank=1, size=2).average_gradients([parameter])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("rank 1 of 2 lost contact with the other ranks during gradient averaging: another rank")
    assert "(--dist-timeout)" in message and "Timed out waiting 5000ms" in message
    assert isinstance(caught.value, RuntimeError)
    assert caught.value.exit_status == 3  # the CLI's status for a rank that stopped because of another
