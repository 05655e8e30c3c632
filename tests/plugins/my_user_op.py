"""A user op written the way docs/ops-contract.md shows: one file, loaded via custom_operator_paths."""
from ops import OPERATORS, Fields, Mapper


@OPERATORS.register_module("my_user_op")
class MyUserOp(Mapper):
    """Multiplies the sample's ``n`` by ``factor`` and writes it to meta."""

    def __init__(self, factor: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def process_single(self, sample):
        sample[Fields.meta]["scaled"] = sample["n"] * self.factor
        return sample
