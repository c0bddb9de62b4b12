"""Build and run the console: ONE factory (make_app) for the CLI and the tests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime

from dr_console.config import Config, ConfigError
from dr_console.core.jobs import JobManager
from dr_console.tui.app import DrConsoleApp, FleetSource, utcnow

NO_CONFIG = (
    "drconsole: no configuration found (looked at --config, $DRCONSOLE_CONFIG, ./drconsole.toml "
    "and $XDG_CONFIG_HOME/drconsole/config.toml). Try 'drconsole demo' to open the console on a "
    "local lab, or 'drconsole init --node NAME=[USER@]HOST[:PORT]' to write a config."
)


def make_app(
    config: Config,
    *,
    collector: FleetSource | None = None,
    now: Callable[[], datetime] | None = None,
    readonly: bool | None = None,
    theme: str | None = None,
    jobs: JobManager | None = None,
) -> DrConsoleApp:
    """`readonly` / `theme` override the config only when given (None = not typed).

    Without `collector`, the real Collector is built, and (unless `jobs` is given) a JobManager
    on the collector's pooled transports, journalling to console.journal_dir."""
    if collector is None:
        from dr_console.core.collector import Collector

        real = Collector(config, now=now or utcnow)
        if jobs is None:
            from dr_console.core.journal import Journal

            transports = {node.name: real.transport(node.name) for node in config.nodes}
            jobs = JobManager(transports, Journal(config.console.journal_dir), config)
        collector = real
    return DrConsoleApp(
        config,
        collector,
        now=now or utcnow,
        readonly=config.console.readonly if readonly is None else readonly,
        theme=config.console.theme if theme is None else theme,
        jobs=jobs,
    )


def run_console(args: argparse.Namespace) -> int:
    from dr_console.config import find_config, load_config

    try:
        path = find_config(args.config)
        if path is None:
            print(NO_CONFIG, file=sys.stderr)
            return 3
        config = load_config(path)
    except ConfigError as exc:
        print(f"drconsole: {exc}", file=sys.stderr)
        return 3
    app = make_app(config, readonly=args.readonly, theme=args.theme)
    result = app.run()
    return int(result or 0) if app.return_code in (None, 0) else int(app.return_code or 1)
