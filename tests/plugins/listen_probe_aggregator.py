"""Test op: on the driver, while the run's Ray is up, list every listening TCP socket of this
process and its descendants (GCS, raylet, agents, workers) into ``listening.json``."""
import json
import os

from ops import OPERATORS
from ops.base import Aggregator


@OPERATORS.register_module("listen_probe_aggregator")
class ListenProbeAggregator(Aggregator):
    def aggregate_batched(self, samples):
        pass

    def finalize(self):
        import psutil
        me = psutil.Process()
        found = []
        for proc in [me, *me.children(recursive=True)]:
            try:
                conns = proc.net_connections(kind="inet")
                name = proc.name()
            except psutil.Error:
                continue
            found += [{"pid": proc.pid, "name": name, "ip": c.laddr.ip, "port": c.laddr.port}
                      for c in conns if c.status == psutil.CONN_LISTEN]
        path = os.path.join(self.context.work_dir, "listening.json")
        with open(path, "w") as fh:
            json.dump(found, fh)
        return {"listening": path}
