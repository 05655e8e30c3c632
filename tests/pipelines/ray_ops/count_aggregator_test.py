"""Test aggregator: counts rows and sums ``n``; writes ``<work_dir>/count_aggregator.json``."""
import json
import os

from ops import OPERATORS, Aggregator


@OPERATORS.register_module("count_aggregator_test")
class CountAggregatorTest(Aggregator):
    def setup(self):
        self.rows, self.total = 0, 0

    def aggregate_batched(self, samples):
        self.rows += len(samples)
        self.total += sum(s["n"] for s in samples)

    def finalize(self):
        path = os.path.join(self.context.work_dir, "count_aggregator.json")
        with open(path, "w") as fh:
            json.dump({"rows": self.rows, "sum_n": self.total}, fh)
        return {"path": path}
