"""`pdsim observe` (make observe): run a Prometheus on loopback that scrapes every pdsim cluster on this machine.

Prometheus is an external program (Debian's `prometheus` package); this module prepares its working
directory (a copy of deploy/prometheus/prometheus.yml beside the `targets/` directory the launcher writes
service discovery files into), starts it, waits until it answers, and stops it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pdsim.launcher import default_targets_dir

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_DIR = REPO / "deploy" / "grafana"


@dataclass(frozen=True, slots=True)
class ObserveConfig:
    workdir: Path = field(default_factory=lambda: default_targets_dir().parent)  # targets/ lives here
    config: Path = PROMETHEUS_CONFIG
    host: str = "127.0.0.1"
    port: int = 9090
    scrape_interval: str | None = None  # e.g. "1s"; None keeps the shipped file's
    retention: str = "2d"
    startup_timeout: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in [1, 65535], got {self.port}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise FileNotFoundError(
            "prometheus is not installed: `make observe` installs it on Debian/Ubuntu "
            "(deploy/prometheus/install.sh), or install it yourself (apt-get install -y prometheus)"
        )
    return found


def prepare(config: ObserveConfig) -> Path:
    """The working directory's prometheus.yml: the shipped file, with the scrape interval overridden if asked."""
    (config.workdir / "targets").mkdir(parents=True, exist_ok=True)
    settings = yaml.safe_load(config.config.read_text())
    if config.scrape_interval is not None:
        settings["global"]["scrape_interval"] = config.scrape_interval
        settings["global"]["evaluation_interval"] = config.scrape_interval
        for job in settings["scrape_configs"]:
            for discovery in job.get("file_sd_configs", []):
                discovery["refresh_interval"] = config.scrape_interval
    path = config.workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def start_prometheus(config: ObserveConfig) -> subprocess.Popen[bytes]:
    """Start Prometheus and wait until it is ready; the caller stops it (`stop_prometheus`)."""
    config_file = prepare(config)
    process = subprocess.Popen(
        [
            prometheus_binary(),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={config.workdir / 'data'}",
            f"--storage.tsdb.retention.time={config.retention}",
            f"--web.listen-address={config.host}:{config.port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + config.startup_timeout
    while not _ready(config.url):
        if process.poll() is not None:
            errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"prometheus exited with code {process.returncode}: {errors.strip()[-2000:]}")
        if time.monotonic() > deadline:
            stop_prometheus(process)
            raise TimeoutError(f"prometheus did not answer on {config.url} within {config.startup_timeout:.0f} s")
        time.sleep(0.2)
    return process


def stop_prometheus(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def grafana_help(prometheus_url: str) -> str:
    return "\n".join(
        [
            f"Prometheus: {prometheus_url}  (targets: {prometheus_url}/targets)",
            "Grafana, with the datasource and dashboard provisioned (Docker, host networking):",
            "  docker run --rm --network host \\",
            f"    -v {GRAFANA_DIR}/provisioning:/etc/grafana/provisioning \\",
            f"    -v {GRAFANA_DIR}/dashboards:/var/lib/grafana/dashboards/pdsim grafana/grafana",
            "  open http://127.0.0.1:3000 (admin/admin): Dashboards → pdsim → 'pdsim: colocated vs disaggregated'",
            "Any other Grafana: add a Prometheus datasource at the URL above, then Dashboards → New → Import →",
            f"  upload {GRAFANA_DIR / 'dashboards' / 'pdsim.json'}.",
            "Start clusters (make up-colocated, make disaggregated, make compare ...) and they appear within seconds.",
        ]
    )


def run_observe(config: ObserveConfig) -> int:
    """Run Prometheus in the foreground until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, _interrupt)
    process = start_prometheus(config)
    try:
        print(grafana_help(config.url), flush=True)
        print("Ctrl-C stops Prometheus.", flush=True)
        while process.poll() is None:
            time.sleep(0.5)
        print(f"pdsim observe: prometheus exited with code {process.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_prometheus(process)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
