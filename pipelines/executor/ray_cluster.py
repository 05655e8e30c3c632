"""Ray connection, resource checks and per-op scheduling plans for the Ray executor."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Iterator, Optional

from ops.base import OP
from ops.registry import load_custom_operators
from pipelines.config import RecipeError

logger = logging.getLogger("imgjuicer")

# Actors that cannot start within this time fail the run instead of waiting for ever.
ACTOR_START_TIMEOUT_S = float(os.environ.get("IMGJUICER_RAY_ACTOR_TIMEOUT", "600"))
# A block whose worker dies (OOM, segfault, os._exit) is retried this often, then the run
# fails naming the op (Ray Data's default retries for ever: a poison sample would hang).
MAX_BLOCK_RETRIES = int(os.environ.get("IMGJUICER_RAY_MAX_RETRIES", "3"))
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a single-node Ray on loopback


def core_runtime_env() -> dict:
    """Ship this checkout's ``ops`` and ``pipelines`` packages to every node of the cluster."""
    import ops
    import pipelines
    dirs = [os.path.dirname(os.path.abspath(m.__file__)) for m in (ops, pipelines)]
    return {"py_modules": dirs, "excludes": ["__pycache__", "*.pyc"]}


def connect(address: Optional[str]) -> bool:
    """Initialise Ray unless this process already did; True when we started it (and own it)."""
    import ray

    if ray.is_initialized():
        logger.info("ray: using the Ray instance this process already initialised")
        return False
    kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    address = address or os.environ.get("RAY_ADDRESS")  # set for drivers of Ray Jobs
    if address:
        # Joining a cluster: its nodes may hold another version of the code (or none).
        kwargs.update(address=address, runtime_env=core_runtime_env())
    else:
        # a new Ray for this run, even when `ray start` left one running on this machine
        kwargs.update(address="local", num_cpus=os.cpu_count() or 1)
    try:
        with (contextlib.nullcontext() if address else private_local_ray()):
            ray.init(**kwargs)
    except ConnectionError as exc:
        raise RecipeError(f"ray_address: cannot join a Ray cluster at '{address}': {exc}") from None
    logger.info("ray: %s cluster with %s", "joined" if address else "started a local",
                _fmt(ray.cluster_resources()))
    return True


@contextlib.contextmanager
def private_local_ray() -> Iterator[None]:
    """Settings for the single-node Ray a run starts for itself.

    * Loopback only: Ray binds its servers (GCS, raylet, object manager, every worker's gRPC
      port) to the node's IP address, which it takes from the default route -- every
      interface a neighbour can reach, and Ray runs whatever code a client sends it.  Ray's
      own switch for a node that is never part of a cluster (the one macOS and Windows use,
      ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) makes the node's address 127.0.0.1.  Ray
      reads it into ``ray_constants`` when first imported (possibly before this run), so
      the constant is set for the start-up too; the processes Ray starts inherit the variable.
    * Token authentication, chosen explicitly: Ray 2.60 enables it by default for a new local
      cluster and logs a WARNING on every run to say so; stating ``RAY_AUTH_MODE=token``
      keeps the protection and the log clean.  A user's own RAY_AUTH_MODE is respected.
    """
    from ray._private import ray_constants

    saved_env = {k: os.environ.get(k) for k in (LOCAL_ONLY_ENV, "RAY_AUTH_MODE")}
    saved_const = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV] = "0"
    if "RAY_AUTH_MODE" not in os.environ:
        _choose_token_auth()
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_const
        for k, v in saved_env.items():
            if k == "RAY_AUTH_MODE" and v is None:
                continue  # this process's Ray is in token mode now; its workers must agree
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _choose_token_auth() -> None:
    """RAY_AUTH_MODE=token for this process and the ones it starts; Ray caches its config at
    import, so it is refreshed the way Ray itself does when it turns the mode on."""
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth
    except ImportError:  # a Ray without token authentication: nothing to refresh
        return
    _enable_token_auth()


def ray_data_module():
    """``ray.data``, set up for a run: progress bars unless TQDM_DISABLE is set, no plan
    banners, bounded waits for actors.  Imported only by passes that use an actor pool (a
    recipe of CPU ops runs on plain tasks and never pays for Ray Data's start)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = not os.environ.get("TQDM_DISABLE")
    ctx.print_on_execution_start = False
    if ctx.wait_for_min_actors_s is None or ctx.wait_for_min_actors_s < 0:
        ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray.data


def ship_custom_operators(paths: list[str]) -> list[str]:
    """Pickle user op modules by value, so workers need neither the files nor an import path."""
    from ray import cloudpickle

    names = load_custom_operators(paths)  # already imported by the recipe parser: cheap
    for name in names:
        cloudpickle.register_pickle_by_value(sys.modules[name])
    return names


def _fmt(resources: dict) -> str:
    keep = {k: v for k, v in resources.items()
            if not k.startswith("node:") and k not in ("object_store_memory",)}
    return ", ".join(f"{k} {v / 2**30:.1f}GiB" if k == "memory" else f"{k} {v:g}"
                     for k, v in sorted(keep.items()))


@dataclass
class ClusterInfo:
    """The cluster's total resources and each alive node's, read once per run."""

    total: dict
    nodes: list = field(default_factory=list)  # each alive node's resources

    @classmethod
    def current(cls) -> "ClusterInfo":
        import ray
        return cls(dict(ray.cluster_resources()),
                   [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")])

    def fits(self, need: dict) -> bool:
        need = {k: v for k, v in need.items() if v}
        return any(all(res.get(k, 0) >= v for k, v in need.items()) for res in self.nodes)


@dataclass
class OpPlan:
    """How one op runs: Ray tasks or an actor pool, and the resources of each."""

    actors: bool
    size: int
    map_args: dict
    text: str
    fuse_key: Optional[tuple] = None  # ops with equal keys may share one Ray pass


def plan_op(index: int, op: OP, np_default: int, require_gpus: bool,
            info: ClusterInfo) -> OpPlan:
    """Decide tasks / actors and resources for an op; RecipeError when it can never run.
    A task plan's ``map_args`` are ``ray_tasks.run_tasks`` options; an actor plan's are Ray
    Data ``map_batches`` arguments."""
    where = f"process[{index}] op '{op.name}'"
    cpus = float(op.num_cpus) if op.num_cpus is not None else 1.0
    base = {"num_cpus": cpus}
    if op.memory:
        base["memory"] = op.memory
    total_cpu = info.total.get("CPU", 0)
    if not op.uses_accelerator:
        _check_fits(where, {"CPU": cpus, "memory": op.memory}, info)
        n = op.num_proc or np_default
        return OpPlan(False, n, dict(base, max_retries=MAX_BLOCK_RETRIES),
                      f"up to {n} tasks x {cpus:g} CPU", ("tasks", n, cpus, op.memory))
    gpus_total = info.total.get("GPU", 0)
    if gpus_total > 0:
        gpus = float(op.num_gpus) if op.num_gpus else 1.0
        need = {"CPU": cpus, "GPU": gpus, "memory": op.memory}
        _check_fits(where, need, info)
        n = max(1, int(gpus_total // gpus))
        text = f"{n} actors x {gpus:g} GPU"
        args = dict(base, num_gpus=gpus)
    else:
        if require_gpus:
            raise RecipeError(
                f"{where} runs on a GPU (accelerator: cuda) and ray_require_gpus is set, but "
                f"the Ray cluster has no GPUs ({_fmt(info.total)}); add GPU nodes or unset "
                "ray_require_gpus to run it on CPU actors")
        _check_fits(where, {"CPU": cpus, "memory": op.memory}, info)
        n = max(1, min(op.num_proc or np_default, int(total_cpu // cpus) if cpus else 1))
        logger.warning("%s wants a GPU but the Ray cluster has none: running it on %d CPU "
                       "actor(s) instead", where, n)
        text = f"{n} CPU actors x {cpus:g} CPU (no GPU in the cluster)"
        args = dict(base)
    args["compute"] = ray_data_module().ActorPoolStrategy(min_size=1, max_size=n, initial_size=n)
    args["max_task_retries"] = MAX_BLOCK_RETRIES  # a dead actor restarts; its block retries
    return OpPlan(True, n, args, text)


def _check_fits(where: str, need: dict, info: ClusterInfo) -> None:
    if not info.fits(need):
        wanted = _fmt({k: v for k, v in need.items() if v})
        nodes = "; ".join(_fmt(n) for n in info.nodes) or "no alive node"
        raise RecipeError(f"{where} needs {wanted} per worker, but no node of the Ray cluster "
                          f"has that much (nodes: {nodes}); lower num_cpus / num_gpus / memory")
