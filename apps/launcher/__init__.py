"""`pdsim up`: start a whole cluster on this machine and stop every process it started.

`spec` holds a cluster's shape (`ClusterSpec`), `processes` supervises child processes (start, ready lines, stop
in order), `cluster` starts the nodes and the router of a spec and reports them.
"""

from __future__ import annotations

from apps.launcher.cluster import run_cluster, started_cluster
from apps.launcher.processes import Child, Launcher, interrupt
from apps.launcher.spec import ClusterSpec, default_targets_dir

__all__ = ["Child", "ClusterSpec", "Launcher", "default_targets_dir", "interrupt", "run_cluster", "started_cluster"]
