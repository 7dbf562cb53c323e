"""segkit.engine.stream: one global stream sliced by rank, resumable at any position."""
import pytest

from segkit.engine.stream import TrainStream


def take(stream, n):
    iterator = iter(stream)
    return [next(iterator) for _ in range(n)]


@pytest.mark.parametrize("size, world", [(10, 2), (7, 2), (11, 3)])
def test_stream_shards_make_the_same_global_batches(size, world):
    # also for data sets not divisible by the number of processes, and across epoch boundaries
    per_rank, steps = 2, 3 * size  # many epochs
    one = take(TrainStream(size, seed=5, rank=0, world_size=1), per_rank * world * steps)
    ranks = [take(TrainStream(size, seed=5, rank=r, world_size=world), per_rank * steps) for r in range(world)]
    for t in range(steps):
        together = [sample for shard in ranks for sample in shard[per_rank * t: per_rank * (t + 1)]]
        assert sorted(together) == sorted(one[per_rank * world * t: per_rank * world * (t + 1)]), t
    # and a resumed rank continues its own shard
    resumed = take(TrainStream(size, seed=5, rank=1, world_size=world, start=5), 7)
    assert resumed == ranks[1][5:12]


def test_stream_resumes_where_it_stopped():
    full = TrainStream(7, seed=1)
    resumed = TrainStream(7, seed=1, start=9)
    it_full, it_resumed = iter(full), iter(resumed)
    head = [next(it_full) for _ in range(20)]
    assert [next(it_resumed) for _ in range(11)] == head[9:]
    assert sorted(index for index, _ in head[:7]) == list(range(7))  # an epoch is a permutation
