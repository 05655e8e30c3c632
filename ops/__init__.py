"""imgjuicer operators.  Importing this package is cheap: ops load when a recipe names them."""
from .base import (OP, Aggregator, Deduplicator, Filter, Mapper, OpError, RunContext)
from .fields import Fields, MetaKeys, StatsKeys, Status
from .registry import OPERATORS, load_custom_operators

__all__ = ["OP", "Mapper", "Filter", "Deduplicator", "Aggregator", "OpError", "RunContext",
           "Fields", "MetaKeys", "StatsKeys", "Status", "OPERATORS", "load_custom_operators"]
