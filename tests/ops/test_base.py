"""The op contract on its own: per-sample isolation, filter reasons, fan-out ids, dedup phases."""
import json

from ops import Deduplicator, Fields, Filter, Mapper, OpError, Status
from ops.base import batch_of


def _batch(values):
    return batch_of([{"v": v, Fields.id: str(i), Fields.stats: {}, Fields.meta: {}}
                     for i, v in enumerate(values)])


class Halver(Mapper):
    name = "halver"

    def process_batched(self, samples):
        for s in samples:
            if s["v"] < 0:
                raise OpError(f"negative value {s['v']}")
            s["v"] = s["v"] / 2
        return samples


def test_batched_mapper_failure_marks_only_the_bad_sample():
    out = Halver().run_batched(_batch([2, -1, 8]))
    assert out[Fields.status] == [Status.kept, Status.error, Status.kept]
    assert out["v"] == [1, -1, 4]                       # the bad row passes through unchanged
    assert out[Fields.reason][1] == "halver: negative value -1"


class Crasher(Mapper):
    name = "crasher"

    def process_single(self, sample):
        return {"v": 1 / sample["v"], **{k: sample[k] for k in sample if k != "v"}}


def test_unexpected_exception_names_its_type():
    out = Crasher().run_batched(_batch([1, 0]))
    assert out[Fields.status] == [Status.kept, Status.error]
    assert out[Fields.reason][1] == "crasher: ZeroDivisionError: division by zero"


class FanOutNoIds(Mapper):
    name = "fan"

    def process_batched(self, samples):
        return [dict(s) for s in samples for _ in range(2)]


def test_fan_out_without_ids_is_an_error_not_silent_duplication():
    out = FanOutNoIds().run_batched(_batch([1, 2]))
    assert out[Fields.status] == [Status.error, Status.error]
    assert "without a distinct __dj__id__" in out[Fields.reason][0]


class Positive(Filter):
    name = "positive"

    def compute_stats_single(self, sample):
        sample[Fields.stats]["v_sign"] = 1 if sample["v"] > 0 else -1
        return sample

    def process_single(self, sample):
        if sample["v"] == 0:
            return False, "zero is neither"
        return sample[Fields.stats]["v_sign"] > 0


def test_filter_reasons_default_to_the_stats_it_wrote():
    out = Positive().run_batched(_batch([3, -2, 0]))
    assert out[Fields.status] == [Status.kept, Status.filtered, Status.filtered]
    assert out[Fields.reason][1] == "positive: v_sign=-1"
    assert out[Fields.reason][2] == "positive: zero is neither"
    assert json.loads(out[Fields.stats][0]) == {"v_sign": 1}


class ModDedup(Deduplicator):
    name = "mod_dedup"

    def compute_hash_single(self, sample):
        sample[Fields.meta]["h"] = sample["v"] % 3
        return sample

    def group(self, samples):
        seen, out = {}, []
        for s in samples:
            h = s[Fields.meta]["h"]
            first = seen.setdefault(h, s[Fields.id])
            out.append((first == s[Fields.id], {"kept": first}))
        return out


def test_deduplicator_phases():
    op = ModDedup()
    hashed = op.run_batched(_batch([1, 4, 2, 7]))
    assert hashed[Fields.status] == [Status.kept] * 4
    keep, infos = op.run_group({Fields.id: hashed[Fields.id], Fields.meta: hashed[Fields.meta]})
    assert keep == [True, False, True, False]
    assert infos[1] == {"kept": "0"} and infos[3] == {"kept": "0"}


class Memo(Mapper):
    name = "memo"
    calls = 0

    def process_batched(self, samples):
        bad = None
        for s in samples:
            if self.recall(s) is None:
                if s["v"] < 0:
                    bad = bad or OpError("negative")
                    continue
                Memo.calls += 1
                self.remember(s, s["v"] * 10)
        if bad:
            raise bad
        for s in samples:
            s["v"] = self.recall(s)
        return samples


def test_recall_hands_finished_work_to_the_per_sample_retry():
    out = Memo().run_batched(_batch([1, -1, 2]))
    assert out["v"] == [10, -1, 20] and out[Fields.status][1] == Status.error
    assert Memo.calls == 2                               # nothing computed twice
