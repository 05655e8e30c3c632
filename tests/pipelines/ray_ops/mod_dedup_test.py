"""Test deduplicator: samples whose ``n`` agree modulo ``modulo`` are copies; the smallest
``n`` of each group is kept (so the result does not depend on row order)."""
from ops import OPERATORS, Deduplicator, Fields


@OPERATORS.register_module("mod_dedup_test")
class ModDedupTest(Deduplicator):
    def __init__(self, modulo: int = 7, **kwargs):
        super().__init__(**kwargs)
        self.modulo = modulo

    def compute_hash_single(self, sample):
        sample[Fields.meta]["dkey"] = sample["n"] % self.modulo
        return sample

    def group(self, samples):
        first = {}
        for s in samples:
            key = s[Fields.meta]["dkey"]
            rank = (int(s[Fields.id].split("/")[0]), s[Fields.id])
            if key not in first or rank < first[key]:
                first[key] = rank
        out = []
        for s in samples:
            keep_id = first[s[Fields.meta]["dkey"]][1]
            out.append((True, None) if s[Fields.id] == keep_id else (False, {"dup_of": keep_id}))
        return out
