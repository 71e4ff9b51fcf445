"""`pdsim observe` (make observe): run a Prometheus on loopback that scrapes every pdsim cluster on this machine.

Prometheus is an external program (Debian's `prometheus` package); this module prepares its working
directory (a copy of deploy/prometheus/prometheus.yml beside the `targets/` directory the launcher writes
service discovery files into), starts it, waits until it answers, and stops it. While it runs it removes the
files of launchers that are gone (killed with -9), so Prometheus never scrapes a cluster that no longer exists.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from apps.launcher import default_targets_dir, interrupt, remove_stale

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_DIR = REPO / "deploy" / "grafana"
_SWEEP_SECONDS = 5.0  # how often stale targets files are looked for: within one of Prometheus' refresh intervals


@dataclass(frozen=True, slots=True)
class ObserveConfig:
    workdir: Path = field(default_factory=lambda: default_targets_dir().parent)  # prometheus.yml, data/, log
    targets: Path = field(default_factory=default_targets_dir)  # where launchers write service discovery files
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
    """The working directory's prometheus.yml: the shipped file, watching `config.targets` (an absolute path, so
    it is the directory the launchers write to), with the scrape interval overridden if asked."""
    config.workdir.mkdir(parents=True, exist_ok=True)
    config.targets.mkdir(parents=True, exist_ok=True)
    remove_stale(config.targets)
    settings = yaml.safe_load(config.config.read_text())
    if config.scrape_interval is not None:
        settings["global"]["scrape_interval"] = config.scrape_interval
        settings["global"]["evaluation_interval"] = config.scrape_interval
    for job in settings["scrape_configs"]:
        for discovery in job.get("file_sd_configs", []):
            discovery["files"] = [str(config.targets.resolve() / "*.json")]
            if config.scrape_interval is not None:
                discovery["refresh_interval"] = config.scrape_interval
    path = config.workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def start_prometheus(config: ObserveConfig) -> subprocess.Popen[bytes]:
    """Start Prometheus and wait until it is ready; the caller stops it (`stop_prometheus`)."""
    _check_port_free(config.host, config.port)
    config_file = prepare(config)
    log = config.workdir / "prometheus.log"  # a file, not a pipe: nobody reads a pipe during a long run
    with log.open("ab") as log_file:
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
            stderr=log_file,
        )
    try:
        _wait_ready(process, config, log)
    except BaseException:  # Ctrl-C during start-up included: never leave it holding the port and the data lock
        stop_prometheus(process)
        raise
    return process


def _wait_ready(process: subprocess.Popen[bytes], config: ObserveConfig, log: Path) -> None:
    deadline = time.monotonic() + config.startup_timeout
    while True:
        if process.poll() is not None:  # before asking the port: another server may be answering there
            errors = log.read_text(errors="replace").strip()[-2000:]
            raise RuntimeError(f"prometheus exited with code {process.returncode}: {errors}")
        if _ready(config.url):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"prometheus did not answer on {config.url} within {config.startup_timeout:.0f} s")
        time.sleep(0.2)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise RuntimeError(
                f"{host}:{port} is in use (another Prometheus?): stop it, or pick a port, e.g. "
                "make observe PROMETHEUS_PORT=9091"
            ) from None


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
    signal.signal(signal.SIGTERM, interrupt)
    try:
        process = start_prometheus(config)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError, FileNotFoundError) as error:
        print(f"pdsim observe: {error}", file=sys.stderr)
        return 1
    try:
        print(grafana_help(config.url), flush=True)
        print("Ctrl-C stops Prometheus.", flush=True)
        swept = 0.0
        while process.poll() is None:
            if time.monotonic() - swept > _SWEEP_SECONDS:
                remove_stale(config.targets)
                swept = time.monotonic()
            time.sleep(0.5)
        print(f"pdsim observe: prometheus exited with code {process.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_prometheus(process)
