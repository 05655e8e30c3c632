"""Test fan-out mapper: samples whose ``n`` is a multiple of ``every`` become two rows."""
from ops import OPERATORS, Fields, Mapper


@OPERATORS.register_module("fanout_test_mapper")
class FanoutTestMapper(Mapper):
    def __init__(self, every: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.every = every

    def process_batched(self, samples):
        out = []
        for s in samples:
            if s["n"] % self.every:
                out.append(s)
                continue
            for k in range(2):
                child = dict(s, **{Fields.id: f"{s[Fields.id]}/{k}",
                                   Fields.meta: dict(s[Fields.meta], part=k)})
                out.append(child)
        return out
