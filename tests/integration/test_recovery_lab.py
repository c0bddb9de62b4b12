"""Recovery on the lab, for real: headless recover (PITR, remote), pre-flight refusals, the
checklist on restored files, and drills on both nodes. Every restored instance and directory
is stopped and removed, even when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import re
import secrets
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from ground_truth import LAB_SERVERS, capabilities

from dr_console.cli import build_parser
from dr_console.config import Config, load_config
from dr_console.core.recovery_checklist import post_recovery_checklist
from dr_console.core.restored import (
    RestoredInstance,
    read_restored_conf,
    remove_tree,
    start_on_a_free_port,
)
from dr_console.core.transport import Transport, open_transport
from dr_console.core.transport_relay import RelayTransport
from dr_console.headless import HeadlessError
from dr_console.headless_recovery import RECOVERY_RUNNERS
from dr_console.lab.lab import Lab
from dr_console.models import Health

pytestmark = pytest.mark.integration

SERVER = "pgserver"
BINDIR = "/usr/lib/postgresql/15/bin"
# Ports for the servers these tests start on restored directories; in Linux's ephemeral range,
# like the drill's, so a port can be taken by an outgoing connection at any moment.
TEST_PORTS = range(55460, 55480)


def headless(config: Config, *argv: str) -> tuple[int, str, str]:
    """Run a recovery command like `drconsole --run …`: (exit code, stdout, error message)."""
    args = build_parser().parse_args(list(argv))
    out = io.StringIO()
    try:
        return RECOVERY_RUNNERS[args.run](args, config, out), out.getvalue(), ""
    except HeadlessError as exc:
        return exc.exit_code, out.getvalue(), str(exc)


def recover_latest(config: Config, dest: str, server: str = SERVER) -> tuple[int, str, str]:
    """`--run recover --server SERVER --target latest --dest DEST --yes`."""
    return headless(config, "--run", "recover", "--server", server, "--target", "latest",
                    "--dest", dest, "--yes")


@pytest.fixture(scope="module")
def config(lab: Lab) -> Config:
    loaded = load_config(lab.config_path)
    return replace(loaded, console=replace(loaded.console, command_timeout=120.0))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 300))


class Scratch:
    """A directory to recover into on some lab host, removed (with any server in it) at the end."""

    def __init__(self, lab: Lab, config: Config, who: str) -> None:
        self.lab, self.config, self.who = lab, config, who
        home = lab.settings.home_of(lab.settings.host_users[who])
        self.path = f"{home}/rectest-{secrets.token_hex(4)}"
        base = re.escape(str(lab.settings.base_dir))
        self.shape = re.compile(base + r"/home/[a-z0-9-]+/rectest-[0-9a-f]{8}")
        self.instances: list[RestoredInstance] = []

    def transport(self) -> tuple[Transport, Transport]:
        """(transport to the node the test recovers from, transport to this directory's host)."""
        node = open_transport(self.config.node("bserver"), connect_timeout=10)
        if self.who == "pgserver":
            return node, RelayTransport(node, f"{self.lab.settings.pg_user}@pgserver")
        if self.who == "bserver":
            return node, node
        geo = open_transport(self.config.node(self.who), connect_timeout=10)
        return geo, geo

    async def start(self, transport: Transport) -> RestoredInstance:
        """A server on the restored directory, on the first port of TEST_PORTS it can bind."""
        inst = RestoredInstance(
            transport, BINDIR, f"{self.path}/data", self.path, TEST_PORTS.start,
            f"{self.path}/postgres.log",
        )  # fmt: skip
        self.instances.append(inst)  # stopping needs only the data directory
        return await start_on_a_free_port(inst, TEST_PORTS, timeout=60, command_timeout=30)

    def cleanup(self) -> None:
        async def go() -> None:
            node, here = self.transport()
            try:
                for inst in self.instances:
                    with contextlib.suppress(Exception):  # cleanup goes on regardless
                        await RestoredInstance(here, *_fields(inst)).stop(timeout=30)
                await remove_tree(here, self.path, self.shape)
            finally:
                await node.close()
                if here is not node:
                    await here.close()

        run(go())


@contextlib.contextmanager
def outgoing_connection_from(port: int) -> Iterator[None]:
    """A loopback TCP connection whose client end holds 127.0.0.1:PORT, as an ssh client's
    ephemeral port would: no listener check sees it, but a server cannot bind the port."""
    with socket.socket() as listener, socket.socket() as client:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        try:
            client.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            yield  # another connection holds it already: the same condition
            return
        client.connect(listener.getsockname())
        accepted, _ = listener.accept()
        with accepted:
            yield


def _fields(inst: RestoredInstance) -> tuple[str, str, str, int, str]:
    return inst.bindir, inst.data_dir, inst.socket_dir, inst.port, inst.log_file


@pytest.fixture
def scratch(lab: Lab, config: Config, request: pytest.FixtureRequest) -> Iterator[Scratch]:
    made: list[Scratch] = []

    def make(who: str) -> Scratch:
        s = Scratch(lab, config, who)
        made.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in made:
        s.cleanup()


def utc_now(lab: Lab) -> str:
    return (
        lab.psql(
            "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        ).strip()
        + "+00"
    )


def switch_wal(lab: Lab, server: str = SERVER) -> None:
    cp = lab.barman(
        "bserver", "switch-wal", "--force", "--archive", server, json=False, timeout=120
    )
    assert cp.returncode == 0, cp.stdout + cp.stderr


def make_table(lab: Lab, rows: int, server: str = SERVER) -> str:
    table = f"rectest_{secrets.token_hex(4)}"
    lab.psql(f"create table {table} (i int); insert into {table} select generate_series(1, {rows})",
             server=server)
    return table


def wait_for_backup_on(lab: Lab, node: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backups = lab.barman_json(node, "list-backups", SERVER).get(SERVER, [])
        if any(b.get("status") == "DONE" for b in backups):
            return
        time.sleep(2)
    pytest.fail(f"no DONE backup of {SERVER} on {node} within {timeout} s")


# --- recover ----------------------------------------------------------------------------------


def test_pitr_between_two_changes_recovers_exactly_the_first(
    lab: Lab, config: Config, scratch
) -> None:  # type: ignore[no-untyped-def]
    table = make_table(lab, 100)
    time.sleep(1.2)
    target = utc_now(lab)
    time.sleep(1.2)
    lab.psql(f"insert into {table} select generate_series(101, 150)")
    switch_wal(lab)
    dest = scratch("bserver")

    rc, out, message = headless(
        config, "--run", "recover", "--server", SERVER, "--target", f"time={target}",
        "--target-action", "promote", "--dest", f"{dest.path}/data", "--yes",
    )  # fmt: skip
    assert message == "" and rc in (0, 1), out
    assert "--target-time" in out and "post-recovery checklist" in out
    assert re.search(r"OK\s+archiving disabled", out)

    async def count() -> str:
        node, here = dest.transport()
        try:
            with outgoing_connection_from(TEST_PORTS.start):
                inst = await dest.start(here)
            assert inst.port > TEST_PORTS.start  # moved past the port the connection holds
            state = await inst.wait_replayed(timeout=120)
            assert not state.in_recovery  # promoted at the target
            return await inst.query(f"select count(*) from {table}", timeout=30)
        finally:
            await node.close()

    assert run(count()) == "100"


def test_recover_refuses_without_yes_and_shows_the_plan(lab: Lab, config: Config) -> None:
    rc, out, message = headless(
        config, "--run", "recover", "--server", SERVER, "--target", "latest",
        "--dest", "/var/tmp/never-created",
    )  # fmt: skip
    assert rc == 2 and "--yes" in message
    # `barman restore` from Barman 3.12, `barman recover` before
    assert f"barman {capabilities(lab).restore_verb} --get-wal pgserver" in out
    assert not Path("/var/tmp/never-created").exists()


def test_recover_refuses_in_readonly(lab: Lab, config: Config) -> None:
    ro = replace(config, console=replace(config.console, readonly=True))
    rc, _, message = recover_latest(ro, "/var/tmp/x")
    assert rc == 2 and "read-only" in message


@pytest.mark.compat  # before 3.18 Barman takes no --restore-command: drconsole writes it
@pytest.mark.parametrize("server", LAB_SERVERS)  # pgstream: its WAL came by streaming only
def test_remote_recovery_replays_wal_through_restore_command(
    lab: Lab, config: Config, scratch, server: str
) -> None:  # type: ignore[no-untyped-def]
    table = make_table(lab, 42, server)  # after the backup: only WAL replay brings it back
    switch_wal(lab, server)
    dest = scratch("pgserver")
    ssh_dest = f"{lab.settings.pg_user}@pgserver:{dest.path}/data"
    rc, out, message = recover_latest(config, ssh_dest, server)
    assert message == "" and rc in (0, 1), out
    assert f"--remote-ssh-command 'ssh {lab.settings.pg_user}@pgserver'" in out
    # How the destination reaches the Barman node: the host in the primary's archive_command;
    # a streaming-only server has none, so the node's ssh address from the config.
    ssh = config.node("bserver").ssh
    assert ssh is not None and ssh.port is not None
    reach = "bserver" if server == SERVER else rf"--port {ssh.port} {re.escape(ssh.host)}"
    assert re.search(rf"restore_command barman-wal-restore -P -U \S+ {reach} {server} %f %p",
                     out), out
    assert re.search(r"OK\s+restore_command", out)

    async def check() -> tuple[str, str]:
        node, here = dest.transport()
        try:
            inst = await dest.start(here)
            await inst.wait_replayed(timeout=180)
            rows = await inst.query(f"select count(*) from {table}", timeout=30)
            log = await here.run(["cat", "--", inst.log_file], timeout=30)
            return rows, log.stdout
        finally:
            await node.close()

    rows, log = run(check())
    assert rows == "42"
    assert re.search(r'restored log file "[0-9A-F]{24}" from archive', log)


# --- refusals ---------------------------------------------------------------------------------


def test_non_empty_destination_is_refused(lab: Lab, config: Config, scratch) -> None:  # type: ignore[no-untyped-def]
    dest = scratch("bserver")
    lab.run_as("bserver", ["mkdir", "-p", f"{dest.path}/data"], check=True)
    lab.run_as("bserver", ["touch", f"{dest.path}/data/precious"], check=True)
    rc, _, message = recover_latest(config, f"{dest.path}/data")
    assert rc == 2
    assert "is not empty" in message and "precious" in message
    ls = lab.run_as("bserver", ["ls", f"{dest.path}/data"])
    assert ls.stdout.split() == ["precious"]


def test_of_recoveries_into_one_destination_at_once_exactly_one_writes(
    lab: Lab, config: Config, scratch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from fault_helpers import write_config

    dest = scratch("bserver")
    data = f"{dest.path}/data"
    path = write_config(config, tmp_path / "c.toml")
    argv = [sys.executable, "-m", "dr_console.cli", "-c", str(path), "--run", "recover",
            "--server", SERVER, "--target", "latest", "--dest", data, "--yes"]  # fmt: skip
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    recovered = [r for r in results if "recovered in" in r[1]]
    refused = [r for r in results if "recovered in" not in r[1]]
    assert len(recovered) == 1, results
    for rc, _out, err in refused:
        assert rc == 2 and "Traceback" not in err, err
        assert ("being recovered into by another drconsole" in err or "is not empty" in err), err
    auto = lab.run_as("bserver", ["cat", f"{data}/postgresql.auto.conf"], check=True).stdout
    assert len(re.findall(r"^restore_command", auto, re.M)) == 1, auto
    assert lab.run_as("bserver", ["test", "-e", f"{data}/.drconsole-claim"]).returncode != 0


def test_running_server_is_refused(lab: Lab, config: Config) -> None:
    """Recovering over the live pgserver data directory (remote) is refused, twice over."""
    dest = f"{lab.settings.pg_user}@pgserver:{lab.pg_data}"
    rc, _, message = recover_latest(config, dest)
    assert rc == 2
    assert "PostgreSQL server is running" in message and "is not empty" in message
    assert lab.psql("select 1").strip() == "1"


def test_an_empty_directory_inside_the_live_data_directory_is_refused(
    lab: Lab, config: Config
) -> None:
    """pg_twophase is empty on a quiet cluster: still the live cluster's, never a destination."""
    twophase = f"{lab.pg_data}/pg_twophase"
    listing = lab.run_as("pgserver", ["ls", "-A", twophase], check=True)
    assert listing.stdout.strip() == "", "the control: pg_twophase is empty"
    for dest in (twophase, f"{lab.pg_data}/pg_twophase/new"):
        rc, _, message = recover_latest(config, f"{lab.settings.pg_user}@pgserver:{dest}")
        assert rc == 2, message
        assert f"inside the PostgreSQL data directory {lab.pg_data}" in message
    assert lab.run_as("pgserver", ["ls", "-A", twophase]).stdout.strip() == ""
    assert lab.psql("select 1").strip() == "1"


def test_target_outside_the_window_is_refused(lab: Lab, config: Config) -> None:
    rc, _, message = headless(
        config, "--run", "recover", "--server", SERVER, "--target",
        "time=2001-01-01 00:00:00+00", "--dest", "/var/tmp/never-created", "--yes",
    )  # fmt: skip
    assert rc == 2
    assert "before the earliest consistent point" in message and "recoverable window" in message
    rc, _, message = headless(
        config, "--run", "recover", "--server", SERVER, "--target",
        "time=2099-01-01 00:00:00+00", "--dest", "/var/tmp/never-created", "--yes",
    )  # fmt: skip
    assert rc == 2 and "after the last WAL" in message


def test_time_without_zone_is_refused(lab: Lab, config: Config) -> None:
    rc, _, message = headless(
        config, "--run", "drill", "--server", SERVER, "--target", "time=2026-11-30 17:20:00"
    )
    assert rc == 2 and "no time zone" in message


def test_archive_command_left_in_an_include_file_is_reported(
    lab: Lab, config: Config, scratch
) -> None:  # type: ignore[no-untyped-def]
    """FINDINGS P10 on real restored files: an include the restored copy carries."""
    dest = scratch("bserver")
    rc, out, message = recover_latest(config, f"{dest.path}/data")
    assert message == "" and rc in (0, 1), out
    data = f"{dest.path}/data"
    script = (
        'printf "include_if_exists = %s\\n" "\'site.conf\'" >> "$1/postgresql.conf"; '
        'printf "archive_mode = on\\narchive_command = %s\\n" '
        '"\'barman-wal-archive bserver pgserver %p\'" > "$1/site.conf"'
    )
    lab.run_as("bserver", ["sh", "-c", script, "x", data], check=True)

    async def checklist() -> dict[str, tuple[Health, str]]:
        node, here = dest.transport()
        try:
            conf = await read_restored_conf(here, data, timeout=30)
        finally:
            await node.close()
        return {i.key: (i.status, i.detail) for i in post_recovery_checklist(conf)}

    items = run(checklist())
    assert items["archive_in_include"][0] is Health.WARNING
    assert f"{data}/site.conf:2" in items["archive_in_include"][1]
    assert items["archive_command"][0] is Health.CRITICAL  # the include comes last: it wins


# --- drills -----------------------------------------------------------------------------------


def test_drill_reports_rto_and_verifies(lab: Lab, config: Config) -> None:
    table = make_table(lab, 7)
    switch_wal(lab)
    rc, out, message = headless(
        config,
        "--run",
        "drill",
        "--server",
        SERVER,
        "--verify",
        f"select count(*) from {table}",
        "--format",
        "json",
    )
    assert message == "" and rc in (0, 1), out
    result = json.loads(out)
    print(
        f"drill RTO: {result['rto_seconds']} s (recover {result['recover_seconds']} s "
        f"+ replay {result['replay_seconds']} s)"
    )
    assert result["verified"] is True and result["verify_result"] == "7"
    assert result["rto_seconds"] > 0 and result["backup_id"]
    assert re.search(r"\d+/[0-9A-F]+", result["recovery_point"])
    assert result["cleaned_up"] is True
    journal = Path(config.console.journal_dir) / "drills.jsonl"
    assert json.loads(journal.read_text().splitlines()[-1])["job_id"] == result["job_id"]
    leftovers = subprocess.run(
        ["ls", "-A", f"{lab.node_home('bserver')}/.drconsole/drills"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert not [d for d in leftovers if d.startswith(f"{SERVER}-")]


def test_the_drills_verification_query_runs_unprivileged_read_only_and_as_data(
    lab: Lab, config: Config, tmp_path: Path
) -> None:
    """The query is hostile input: it runs as a role without superuser rights, in a read-only
    transaction, never through psql's meta-commands, and `verified` needs rows."""
    marker = tmp_path / "ran-a-shell-command"
    tmp_path.chmod(0o777)  # so that the Barman user could create the marker, were it run
    drills = lab.node_home("bserver") / ".drconsole" / "drills"
    if drills.exists():
        drills.chmod(0o755)  # as an earlier version left it
    cases = [
        ("select r.rolsuper, current_setting('transaction_read_only') from pg_roles r "
         "where r.rolname = current_user", True, "false|on"),
        (f"\\! touch {marker}", False, "syntax error"),
        (f"copy (select 1) to program 'touch {marker}'", False, "syntax error"),
        (f"select 1; copy (select 1) to program 'touch {marker}'", False, "syntax error"),
        ("select 1 where false", False, ""),
        ("select pg_read_file('/etc/hostname')", False, "permission denied"),
        ("with t as (select set_config('transaction_read_only', 'off', true)) select * from t",
         False, "read-write mode must be set before any query"),
    ]  # fmt: skip
    for sql, verified, shown in cases:
        rc, out, message = headless(config, "--run", "drill", "--server", SERVER,
                                    "--verify", sql, "--format", "json")  # fmt: skip
        # a drill that did not verify is CRITICAL (exit 2), one that did is OK or WARNING
        assert message == "" and rc in ((0, 1) if verified else (2,)), (sql, out, message)
        result = json.loads(out)
        assert result["verified"] is verified, (sql, result["verify_result"])
        assert shown in result["verify_result"], (sql, result["verify_result"])
        assert result["cleaned_up"] is True
        assert not marker.exists(), f"{sql!r} ran a shell command on the Barman node"
    assert stat.S_IMODE(drills.stat().st_mode) == 0o700
    assert stat.S_IMODE(drills.parent.stat().st_mode) == 0o700


def test_a_drill_stops_and_removes_what_an_interrupted_drill_left_running(
    lab: Lab, config: Config
) -> None:
    """An earlier drill killed mid-way: its restored PostgreSQL still runs (trust, spare port)."""
    bindir = lab.settings.pg_bindir
    drills = lab.node_home("bserver") / ".drconsole" / "drills"
    left = drills / f"{SERVER}-20261101T101010-{secrets.token_hex(3)}"
    lab.run_as("bserver", ["mkdir", "-p", str(left)], check=True)
    lab.run_as("bserver", [f"{bindir}/initdb", "-D", f"{left}/data", "-A", "trust"],
               timeout=120, check=True)  # fmt: skip
    lab.run_as("bserver", [f"{bindir}/pg_ctl", "-D", f"{left}/data", "-l", f"{left}/log", "-w",
                           "-o", "-p 55449 -k /tmp -c listen_addresses=127.0.0.1", "start"],
               timeout=120, check=True)  # fmt: skip
    pid = lab.run_as("bserver", ["head", "-n", "1", f"{left}/data/postmaster.pid"]).stdout.strip()
    lab.run_as("bserver", ["sh", "-c", f"echo 1 > {left}/deadline"], check=True)  # long past
    try:
        rc, out, message = headless(config, "--run", "drill", "--server", SERVER,
                                    "--format", "json")  # fmt: skip
        assert message == "" and rc in (0, 1), out
        result = json.loads(out)
        assert result["leftovers"] == [
            f"leftover of an interrupted drill {left.name}: stopped its restored PostgreSQL "
            f"(pid {pid}, trust authentication); removed {left}"
        ]
        assert not left.exists()
        assert lab.run_as("bserver", ["kill", "-0", pid]).returncode != 0, "still running"
    finally:
        lab.run_as("bserver", [f"{bindir}/pg_ctl", "-D", f"{left}/data", "-m", "immediate",
                               "stop"])  # fmt: skip
        lab.run_as("bserver", ["rm", "-rf", str(left)])


def test_drill_from_the_passive_node(lab: Lab, config: Config) -> None:
    wait_for_backup_on(lab, "geobserver")
    deadline = time.monotonic() + 120
    while True:  # a fresh backup is DONE there before its WAL arrives (P14): refused until then
        rc, out, message = headless(
            config, "--run", "drill", "--server", SERVER, "--node", "geobserver", "--format", "json"
        )
        if "has not reached this node yet" not in message or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert message == "" and rc in (0, 1), out
    result = json.loads(out)
    assert result["node"] == "geobserver" and result["verified"] is True
    assert result["verify_result"] == "1"


def test_lsn_drill_stops_exactly_at_the_target(lab: Lab, config: Config) -> None:
    table = make_table(lab, 30)
    lsn = lab.psql("select pg_current_wal_insert_lsn()").strip()
    lab.psql(f"insert into {table} select generate_series(31, 60)")
    switch_wal(lab)
    rc, out, message = headless(
        config, "--run", "drill", "--server", SERVER, "--target", f"lsn={lsn}",
        "--verify", f"select count(*) from {table}", "--format", "json",
    )  # fmt: skip
    assert message == "" and rc in (0, 1), out
    result = json.loads(out)
    assert result["verify_result"] == "30" and result["target"] == f"lsn={lsn.upper()}"
