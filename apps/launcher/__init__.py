"""`pdsim up`: start a whole cluster on this machine and stop every process it started.

`spec` holds a cluster's shape (`ClusterSpec`), `processes` runs child processes (start, ready lines, stop in
order), `supervise` restarts the ones that die, `targets` writes Prometheus service discovery files and removes
those of launchers that are gone, `cluster` starts the nodes and the router of a spec and reports them.
"""

from __future__ import annotations

from apps.launcher.cluster import run_cluster, started_cluster
from apps.launcher.processes import Child, Launcher, interrupt
from apps.launcher.spec import ClusterSpec, Restart, default_targets_dir
from apps.launcher.targets import remove_stale

__all__ = [
    "Child",
    "ClusterSpec",
    "Launcher",
    "Restart",
    "default_targets_dir",
    "interrupt",
    "remove_stale",
    "run_cluster",
    "started_cluster",
]
