"""A node whose Barman is slow (a wrapper that sleeps before exec'ing barman) must not delay the
fast facts of the other node, nor hold up periodic cycles; its slow facts arrive later."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
from ground_truth import SERVER

from dr_console.config import Config, load_config
from dr_console.core.collector import Collector
from dr_console.lab.lab import Lab

pytestmark = pytest.mark.integration

DELAY = 6.0  # seconds the slow node's barman sleeps before starting


def slow_barman(lab: Lab) -> Path:
    # run_dir is readable by the lab users (a pytest tmp_path under /tmp/pytest-of-root is not)
    path = lab.settings.run_dir / "slow-barman.sh"
    path.write_text(f'#!/bin/sh\nsleep {DELAY:g}\nexec barman "$@"\n', encoding="utf-8")
    path.chmod(0o755)
    return path


def slow_config(lab: Lab, wrapper: Path) -> Config:
    base = load_config(lab.config_path)
    nodes = tuple(
        dataclasses.replace(
            node,
            servers=(SERVER,),
            barman=str(wrapper) if node.name == "geobserver" else node.barman,
        )
        for node in base.nodes
    )
    console = dataclasses.replace(base.console, slow_refresh_interval=1.0, command_timeout=30.0)
    return dataclasses.replace(base, nodes=nodes, console=console)


async def test_a_slow_node_does_not_delay_the_others(lab: Lab) -> None:
    wrapper = slow_barman(lab)
    collector = Collector(slow_config(lab, wrapper), check_interval=1.0)
    try:
        started = time.monotonic()
        first = await collector.collect(force_slow=True)  # forced: waits for every node
        assert time.monotonic() - started >= DELAY
        geo = first.nodes["geobserver"].servers[SERVER]
        assert geo.catalogue is not None and geo.catalogue.backups
        assert geo.barman_checks and geo.barman_checks_at is not None
        checks_at = geo.barman_checks_at

        await asyncio.sleep(1.2)  # status, list-backups and check are now due on both nodes
        walls = []
        deadline = time.monotonic() + 4 * DELAY
        while True:
            before = time.monotonic()
            fleet = await collector.collect()
            walls.append(time.monotonic() - before)
            primary = fleet.nodes["bserver"]
            passive = fleet.nodes["geobserver"]
            # the other node's facts are fresh every cycle; the slow node keeps its last values
            assert primary.reachable and passive.reachable
            assert primary.servers[SERVER].archive_queue is not None
            passive_server = passive.servers[SERVER]
            assert passive_server.catalogue is not None and passive_server.catalogue.backups
            if (passive_server.barman_checks_at or checks_at) > checks_at:
                break  # the slow node's check, run in the background, has arrived
            assert time.monotonic() < deadline, "the slow node's check never arrived"
            await asyncio.sleep(0.5)
        assert max(walls) < DELAY / 2, walls
        assert len(walls) >= 2  # there were cycles while the slow node's Barman was running
    finally:
        await collector.close()
        wrapper.unlink(missing_ok=True)


async def test_check_runs_on_its_own_slower_cadence(lab: Lab) -> None:
    base = load_config(lab.config_path)
    nodes = tuple(dataclasses.replace(node, servers=(SERVER,)) for node in base.nodes)
    console = dataclasses.replace(base.console, slow_refresh_interval=1.0)
    config = dataclasses.replace(base, nodes=nodes, console=console)
    collector = Collector(config, check_interval=3600.0)
    try:
        first = await collector.collect(force_slow=True)
        checks_at = first.nodes["bserver"].servers[SERVER].barman_checks_at
        assert checks_at is not None
        await asyncio.sleep(1.2)
        calls = collector.stats.barman_calls
        await collector.collect()  # starts the periodic slow round in the background
        await asyncio.sleep(0.1)
        deadline = time.monotonic() + 30
        while collector.stats.barman_calls - calls < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        # status + list-backups on each node; no check (and no 5th call for it)
        assert collector.stats.barman_calls - calls == 4
        fleet = await collector.collect()
        snap = fleet.nodes["bserver"].servers[SERVER]
        assert snap.barman_checks_at == checks_at and snap.barman_checks
        assert snap.status is not None
    finally:
        await collector.close()
