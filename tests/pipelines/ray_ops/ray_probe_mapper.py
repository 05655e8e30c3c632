"""Test instrument for the Ray executor tests: records where and how each sample ran, and
can kill its own worker process.  Loaded through custom_operator_paths like a user op."""
import json
import os
import uuid

from ops import OPERATORS, Fields, Mapper

_SETUPS = {"count": 0}  # setups in this process


@OPERATORS.register_module("ray_probe_mapper")
class RayProbeMapper(Mapper):
    """Writes ``meta.probe`` = node, pid, GPU ids, CUDA_VISIBLE_DEVICES, device, worker uid,
    setups in this process.  ``log_dir``: append "<id>" per processed sample to a file per
    process; ``setup_dir``: one JSON file per setup().  ``crash_n``: the sample whose ``n``
    equals it kills the worker (os._exit) -- once, when ``crash_marker`` does not exist yet
    (``crash_policy: once``), or as long as it exists (``while_marker``)."""

    def __init__(self, log_dir: str = "", setup_dir: str = "", crash_n: int = -1,
                 crash_marker: str = "", crash_policy: str = "once", **kwargs):
        super().__init__(**kwargs)
        self.log_dir, self.setup_dir = log_dir, setup_dir
        self.crash_n, self.crash_marker, self.crash_policy = crash_n, crash_marker, crash_policy

    def setup(self):
        import ray
        _SETUPS["count"] += 1
        self.uid = uuid.uuid4().hex
        ctx = ray.get_runtime_context() if ray.is_initialized() else None
        self.where = {
            "node": ctx.get_node_id() if ctx else None,
            "pid": os.getpid(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()] if ctx else [],
            "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "device": self.device,
            "uid": self.uid,
        }
        if self.setup_dir:
            with open(os.path.join(self.setup_dir, f"{self.uid}.json"), "w") as fh:
                json.dump(self.where, fh)

    def _maybe_crash(self, sample):
        if sample.get("n") != self.crash_n or not self.crash_marker:
            return
        exists = os.path.exists(self.crash_marker)
        if self.crash_policy == "once" and not exists:
            open(self.crash_marker, "w").close()
            os._exit(1)
        if self.crash_policy == "while_marker" and exists:
            os._exit(1)

    def process_single(self, sample):
        self._maybe_crash(sample)
        image_ok = all(os.path.exists(p) for p in self.image_paths(sample))
        sample[Fields.meta]["probe"] = dict(self.where, setups=_SETUPS["count"],
                                            image_ok=image_ok)
        if self.log_dir:
            with open(os.path.join(self.log_dir, f"{os.getpid()}.log"), "a") as fh:
                fh.write(f"{sample[Fields.id]}\n")
        return sample
