"""How a range filter decides: Data-Juicer's closed / open bounds and reversed ranges."""
from __future__ import annotations


class RangeDecisions:
    """Mixed into Filter; reads ``min_closed_interval``, ``max_closed_interval`` and
    ``reversed_range`` (Filter's common parameters)."""

    min_closed_interval: bool = True
    max_closed_interval: bool = True
    reversed_range: bool = False

    def in_range(self, value, lo=None, hi=None) -> bool:
        """Whether ``value`` is kept for the range [lo, hi] (None: unbounded side).  A closed
        bound keeps a value equal to it, reversed or not (as Data-Juicer's filters decide)."""
        lo_c, hi_c = self.min_closed_interval, self.max_closed_interval
        if not self.reversed_range:
            return (lo is None or value > lo or (lo_c and value == lo)) and \
                (hi is None or value < hi or (hi_c and value == hi))
        return (lo is not None and (value < lo or (lo_c and value == lo))) or \
            (hi is not None and (value > hi or (hi_c and value == hi)))

    def range_text(self, lo=None, hi=None) -> str:
        """The kept range as text: ``[0.1, 1]``, ``(0.1, 1]``, reversed ``(-inf, 0.1] U [1, inf)``."""
        lo_s = "-inf" if lo is None else f"{lo:g}" if isinstance(lo, float) else str(lo)
        hi_s = "inf" if hi is None else f"{hi:g}" if isinstance(hi, float) else str(hi)
        if not self.reversed_range:
            return (f"{'[' if self.min_closed_interval else '('}{lo_s}, "
                    f"{hi_s}{']' if self.max_closed_interval else ')'}")
        return (f"(-inf, {lo_s}{']' if self.min_closed_interval else ')'} U "
                f"{'[' if self.max_closed_interval else '('}{hi_s}, inf)")

    def range_miss(self, lo=None, hi=None) -> str:
        """Why a value is not kept: ``outside [0.1, 1]``, reversed ``not in (-inf, 0.1] U ...``."""
        return f"{'not in' if self.reversed_range else 'outside'} {self.range_text(lo, hi)}"
