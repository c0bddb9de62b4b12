"""PostgreSQL probe input checks that need no server: conninfo refusal and the named queries."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from dr_console.core.postgres import (
    PostgresProbeError,
    PostgresProber,
    load_query,
    parse_conninfo,
)

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "conninfo",
    [
        f"host=127.0.0.1 port=5433 user=mon dbname=postgres password={SECRET}",
        f"host=127.0.0.1 port=5433 password='{SECRET} with spaces' user=mon",
        f"postgresql://mon:{SECRET}@127.0.0.1:5433/postgres",
        f"postgresql://mon@127.0.0.1:5433/postgres?password={SECRET}",
    ],
)
def test_conninfo_with_a_password_is_refused_without_echoing_it(conninfo: str) -> None:
    with pytest.raises(PostgresProbeError) as caught:
        parse_conninfo(conninfo)
    message = str(caught.value)
    assert SECRET not in message
    assert "contains a password" in message
    assert "127.0.0.1:5433" in message
    assert ".pgpass" in message


def test_conninfo_with_a_passfile_is_accepted() -> None:
    params = parse_conninfo("host=127.0.0.2 port=5433 user=mon passfile=/var/tmp/pgpass")
    assert params["passfile"] == "/var/tmp/pgpass"
    assert params["host"] == "127.0.0.2"


def test_malformed_conninfo_gives_one_clean_line() -> None:
    with pytest.raises(PostgresProbeError) as caught:
        parse_conninfo(f"host='127.0.0.1 password={SECRET}")
    message = str(caught.value)
    assert message.startswith("invalid PostgreSQL conninfo:")
    assert "\n" not in message
    assert SECRET not in message


async def test_probe_refuses_a_password_before_connecting() -> None:
    # Listen but never accept: if the prober tried to connect, the probe would hang, not fail fast.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        prober = PostgresProber(connect_timeout=5)
        try:
            with pytest.raises(PostgresProbeError, match="contains a password"):
                async with asyncio.timeout(1):
                    await prober.probe(f"host=127.0.0.1 port={port} user=x password={SECRET}")
        finally:
            await prober.close()


@pytest.mark.parametrize("kwargs", [{"connect_timeout": 0}, {"statement_timeout_ms": 0}])
def test_prober_rejects_non_positive_timeouts(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        PostgresProber(**kwargs)


@pytest.mark.parametrize("major", range(12, 18))
def test_every_probe_has_sql_for_supported_majors(major: int) -> None:
    for name in ("server", "archiver", "ready_files", "replication", "slots"):
        assert "SELECT" in load_query(name, major)


def test_slots_query_has_no_wal_status_column_on_postgresql_12() -> None:
    # pg_replication_slots.wal_status appeared in PostgreSQL 13.
    assert "NULL::text AS wal_status" in load_query("slots", 12)
    for major in range(13, 18):
        assert "s.wal_status" in load_query("slots", major)
