"""`--run metrics` output from a fleet recorded on the real lab, read back with the official
prometheus_client parsers; the rules file checked by the real promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families

from dr_console.config import Config, ConsoleConfig
from dr_console.core import checks
from dr_console.core.metrics import read_last_drills
from dr_console.core.snapshot_io import fleet_from_json
from dr_console.headless import HeadlessError
from dr_console.headless_metrics import exposition, parse_listen, write_atomically

ROOT = Path(__file__).resolve().parent.parent.parent
RECORDINGS = ROOT / "tests" / "recordings"
EXPORTER_FAMILIES = {
    "barman_up", "barman_backups_total", "barman_backups_failed", "barman_last_backup",
    "barman_first_backup", "barman_last_backup_copy_time", "barman_backup_size",
    "barman_backup_wal_size", "barman_metrics_update",
}  # fmt: skip
DRCONSOLE_FAMILIES = {
    "drconsole_node_up", "drconsole_check_status", "drconsole_rpo_seconds",
    "drconsole_recovery_window_begin_timestamp_seconds",
    "drconsole_recovery_window_end_timestamp_seconds", "drconsole_stream_lag_bytes",
    "drconsole_slot_retained_bytes", "drconsole_receive_wal_running",
    "drconsole_last_archived_wal_timestamp_seconds", "drconsole_archive_ready_files",
    "drconsole_archiver_failed", "drconsole_geo_missing_backups",
    "drconsole_geo_wal_lag_segments", "drconsole_geo_wal_lag_bytes",
    "drconsole_geo_wal_lag_seconds", "drconsole_geo_last_sync_timestamp_seconds",
    "drconsole_last_drill_rto_seconds", "drconsole_last_drill_success",
    "drconsole_last_drill_timestamp_seconds", "drconsole_barman", "drconsole_scrape_age_seconds",
}  # fmt: skip


def _config(tmp_path: Path) -> Config:
    return Config(console=ConsoleConfig(journal_dir=str(tmp_path)), nodes=())


@pytest.mark.parametrize("name", ["fleet-lab.json", "fleet-lab-degraded.json"])
def test_every_family_parses_with_help_and_type(tmp_path: Path, name: str) -> None:
    fleet = fleet_from_json((RECORDINGS / name).read_text())
    text = exposition(_config(tmp_path), fleet, openmetrics=False).decode()
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    # the text format has no info type: drconsole_barman is the gauge drconsole_barman_info
    text_names = EXPORTER_FAMILIES | (DRCONSOLE_FAMILIES - {"drconsole_barman"})
    assert text_names | {"drconsole_barman_info"} <= set(parsed)
    for family in parsed.values():
        assert f"# HELP {family.name}" in text or f"# HELP {family.name}_total" in text
        assert f"# TYPE {family.name}" in text or f"# TYPE {family.name}_total" in text
        assert family.documentation, family.name
    for sample in (s for f in parsed.values() for s in f.samples):
        if sample.name.startswith("barman_") and sample.name != "barman_metrics_update":
            assert "node" in sample.labels and "server" in sample.labels, sample
    om = {f.name for f in om_families(exposition(_config(tmp_path), fleet, True).decode())}
    assert om >= EXPORTER_FAMILIES | DRCONSOLE_FAMILIES


def test_the_figures_are_the_snapshots(tmp_path: Path) -> None:
    fleet = fleet_from_json((RECORDINGS / "fleet-lab-degraded.json").read_text())
    text = exposition(_config(tmp_path), fleet, openmetrics=False).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip
    geo = fleet.nodes["geobserver"].servers["pgserver"].geo
    assert geo is not None and geo.wal_lag_segments is not None
    key = (("node", "geobserver"), ("server", "pgserver"))
    assert samples[("drconsole_geo_wal_lag_segments", key)] == geo.wal_lag_segments
    stream = fleet.nodes["bserver"].servers["pgserver"].wal_stream
    assert stream is not None
    bkey = (("node", "bserver"), ("server", "pgserver"))
    assert samples[("drconsole_receive_wal_running", bkey)] == float(bool(
        stream.receive_wal_running))
    results = checks.evaluate_fleet(fleet, _config(tmp_path))
    for r in results:
        labels = (("check", r.check), ("node", r.node), ("server", r.server or ""))
        assert samples[("drconsole_check_status", labels)] == int(r.status)
    catalogue = fleet.nodes["bserver"].servers["pgserver"].catalogue
    assert catalogue is not None
    assert samples[("barman_backups_total", bkey)] == len(catalogue.backups)
    assert samples[("drconsole_node_up", (("node", "bserver"),))] == 1.0


def test_the_last_drill_of_each_server_and_a_bad_line_skipped(tmp_path: Path) -> None:
    lines = [
        {"event": "drill", "node": "bserver", "server": "pgserver", "rto_seconds": 9.5,
         "verified": True, "started_at": "2026-12-01T10:00:00+00:00"},
        {"event": "drill", "node": "bserver", "server": "pgserver", "rto_seconds": 7.25,
         "verified": False, "started_at": "2026-12-02T10:00:00+00:00"},
    ]  # fmt: skip
    (tmp_path / "drills.jsonl").write_text(
        json.dumps(lines[0]) + "\n" + "[" * 50_000 + "\n" + json.dumps(lines[1]) + "\n{bad\n"
    )
    drills = read_last_drills(str(tmp_path))
    last = drills[("bserver", "pgserver")]
    assert (last.rto_seconds, last.success) == (7.25, False)
    fleet = fleet_from_json((RECORDINGS / "fleet-lab.json").read_text())
    text = exposition(_config(tmp_path), fleet, openmetrics=False).decode()
    assert 'drconsole_last_drill_rto_seconds{node="bserver",server="pgserver"} 7.25' in text
    assert 'drconsole_last_drill_success{node="bserver",server="pgserver"} 0.0' in text


def test_the_output_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "drconsole.prom"
    target.write_text("old\n")
    write_atomically(target, b"new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drconsole.prom"]
    assert target.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("value", ["0.0.0.0:9187", "[::]:9187", "10.1.2.3:9187"])
def test_listening_beyond_loopback_needs_listen_any(value: str) -> None:
    with pytest.raises(HeadlessError, match="is not a loopback address") as info:
        parse_listen(value, listen_any=False)
    assert info.value.exit_code == 3 and "--listen-any" in str(info.value)
    assert parse_listen(value, listen_any=True)[1] == 9187


def test_loopback_listen_addresses_are_accepted() -> None:
    assert parse_listen("127.0.0.1:9187", False) == ("127.0.0.1", 9187)
    assert parse_listen("[::1]:9187", False) == ("::1", 9187)
    for bad in ("9187", "127.0.0.1:", "127.0.0.1:99999", ":9187"):
        with pytest.raises(HeadlessError, match="expected HOST:PORT"):
            parse_listen(bad, False)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs Debian's prometheus package")
def test_the_sample_alerting_rules_pass_promtool() -> None:
    rules = ROOT / "sample-configs" / "prometheus-rules.yml"
    done = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
