"""Data-Juicer's Ray spelling of image_deduplicator: the same op, on either executor."""
from __future__ import annotations

from typing import Literal

from ops.base import logger
from ops.registry import OPERATORS

from .image_deduplicator import ImageDeduplicator


@OPERATORS.register_module("ray_image_deduplicator")
class RayImageDeduplicator(ImageDeduplicator):
    """``image_deduplicator`` under the name Data-Juicer's Ray recipes use.  Every
    deduplicator here runs on both executors (hashes are computed by the workers, grouping
    happens once over the hash column), so ``backend`` and ``redis_address`` (Data-Juicer's
    shared hash store) have no effect; giving either logs one warning."""

    def __init__(self, backend: Literal["ray_actor", "redis"] = "ray_actor",
                 redis_address: str = "redis://localhost:6379", **kwargs):
        super().__init__(**kwargs)
        given = [k for k, v, d in (("backend", backend, "ray_actor"),
                                   ("redis_address", redis_address, "redis://localhost:6379"))
                 if v != d]
        if given:
            logger.warning("ray_image_deduplicator: %s ignored (grouping runs once over the "
                           "hash column on every executor; no Redis or actor store is used)",
                           ", ".join(given))
        self.backend, self.redis_address = backend, redis_address
