"""`--run metrics` on the lab, read by the real monitoring DBAs run: Debian's Prometheus scraping
`--listen`, and Debian's node_exporter reading `--output` through its textfile collector. Both
are started by the test on loopback with their own config and data directory, and stopped after.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import lab_config, write_config
from ground_truth import SERVER, wait_until
from prometheus_client.parser import text_string_to_metric_families

from dr_console.lab.lab import Lab

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter")
LAG = "drconsole_geo_wal_lag_segments"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


def _status_lag(config: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "dr_console.cli", "-c", str(config), "--run", "status",
         "--format", "json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    doc = json.loads(done.stdout)
    server = next(s for s in doc["servers"] if s["node"] == "geobserver" and s["server"] == SERVER)
    return int(server["geo"]["wal_lag_segments"])


@pytest.fixture
def served(lab: Lab, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """drconsole serving /metrics, and a Prometheus scraping it every second; yields the config
    and Prometheus's base URL."""
    if PROMETHEUS is None:
        pytest.skip("needs Debian's prometheus package (make system-deps installs it)")
    config = write_config(lab_config(lab, refresh_interval=1.0, slow_refresh_interval=5.0),
                          tmp_path / "c.toml")  # fmt: skip
    metrics_port, prom_port = _free_port(), _free_port()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "dr_console.cli", "-c", str(config), "--run", "metrics",
         "--listen", f"127.0.0.1:{metrics_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: drconsole\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield config, f"http://127.0.0.1:{prom_port}"
    finally:
        _stop(prometheus)
        _stop(exporter)
        assert exporter.stderr is not None
        assert "Traceback" not in exporter.stderr.read().decode()


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(_get(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}"))
    except OSError:
        return []
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def _prometheus_lag(base: str) -> int | None:
    found = _query(base, f'{LAG}{{node="geobserver",server="{SERVER}"}}')
    return int(float(found[0]["value"][1])) if found else None


def test_prometheus_scrapes_the_figures_status_reports_and_sees_them_change(
    lab: Lab, served: tuple[Path, str]
) -> None:
    config, base = served
    wait_until("Prometheus to have scraped drconsole",
               lambda: _prometheus_lag(base) is not None, timeout=120)  # fmt: skip
    # the same figure as --run status (the lab is quiet: both read the same catalogues)
    wait_until("Prometheus and --run status to agree on the geo lag",
               lambda: _prometheus_lag(base) == _status_lag(config), timeout=120, interval=3)
    up = _query(base, 'up{job="drconsole"}')
    assert up and up[0]["value"][1] == "1"
    age = _query(base, "drconsole_scrape_age_seconds")
    assert age and 0 <= float(age[0]["value"][1]) < 30
    with lab.cron_paused("geobserver"):
        before = _prometheus_lag(base) or 0
        lab.barman("bserver", "switch-wal", "--force", "--archive", "--archive-timeout", "60",
                   SERVER, json=False)  # fmt: skip
        lagging = wait_until("the lag to grow in Prometheus",
                             lambda: (lag := _prometheus_lag(base)) is not None and lag > before
                             and lag, timeout=120)  # fmt: skip
        assert lagging == _status_lag(config)
    wait_until("the passive node to catch up in Prometheus",
               lambda: _prometheus_lag(base) == 0, timeout=240, interval=3)  # fmt: skip


def test_node_exporter_reads_the_textfile_output(lab: Lab, tmp_path: Path) -> None:
    if NODE_EXPORTER is None:
        pytest.skip("needs Debian's prometheus-node-exporter package")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    textfiles.chmod(0o755)
    config = write_config(lab_config(lab), tmp_path / "c.toml")
    done = subprocess.run(
        [sys.executable, "-m", "dr_console.cli", "-c", str(config), "--run", "metrics",
         "--output", str(textfiles / "drconsole.prom")],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert sorted(p.name for p in textfiles.iterdir()) == ["drconsole.prom"]  # no temporary left
    port = _free_port()
    exporter = subprocess.Popen(
        [NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={textfiles}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        text = wait_until("node_exporter to answer", lambda: _try_get(url), timeout=60)
    finally:
        _stop(exporter)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["node_textfile_scrape_error"].samples[0].value == 0
    lag = [s for s in families[LAG].samples if s.labels["node"] == "geobserver"]
    assert {s.labels["server"] for s in lag} >= {SERVER}
    assert families["drconsole_node_up"].samples and all(
        s.value == 1 for s in families["drconsole_node_up"].samples)


def _try_get(url: str) -> str | None:
    try:
        return _get(url)
    except OSError:
        return None
