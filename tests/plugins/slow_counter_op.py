"""Test op: sleeps per sample and appends one line per processed sample to a log file, so a
test can kill a run mid-op and see which op a resumed run redid."""
import os
import time

from ops import OPERATORS, Fields, Mapper


@OPERATORS.register_module("slow_counter_mapper")
class SlowCounterMapper(Mapper):
    def __init__(self, tag: str = "a", delay: float = 0.0, log_path: str = "", **kwargs):
        super().__init__(**kwargs)
        self.tag, self.delay, self.log_path = tag, delay, log_path

    def process_single(self, sample):
        time.sleep(self.delay)
        if self.log_path:
            with open(self.log_path, "a") as fh:
                fh.write(f"{self.tag} {sample[Fields.id]}\n")
                fh.flush()
                os.fsync(fh.fileno())
        sample[Fields.meta][f"seen_{self.tag}"] = True
        return sample
