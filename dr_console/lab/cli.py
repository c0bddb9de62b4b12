"""`drconsole lab up|down|status` and `drconsole demo`.

Exit codes: up/down 0 done, 1 failed (the message says why); status 0 up, 1 partially up,
3 absent; 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dr_console.core.barman_versions import NEWEST_SUPPORTED, OLDEST_SUPPORTED
from dr_console.lab.errors import LabError
from dr_console.lab.lab import Lab, mode_error
from dr_console.lab.settings import LabSettings, default_settings


def build_parser() -> argparse.ArgumentParser:
    d = default_settings()
    parser = argparse.ArgumentParser(
        prog="drconsole lab",
        description="The reference deployment (pgserver, bserver, geobserver) on loopback, "
        "with two Barman servers on both nodes: pgserver (rsync backups over ssh, archiving and "
        "streaming) and pgstream, a second cluster on pgserver backed up with pg_basebackup "
        "(backup_method = postgres) and WAL by streaming only. As root the three hosts are "
        "three OS users; as anyone else, a single-user lab runs all three as you (see README, "
        "'Single-user lab').",
    )
    parser.add_argument("action", choices=("up", "down", "status"))
    _add_settings(parser, d)
    parser.add_argument("--json", action="store_true", help="status: machine-readable output")
    parser.add_argument("--quiet", "-q", action="store_true", help="up/down: no progress lines")
    return parser


def _add_settings(parser: argparse.ArgumentParser, d: LabSettings) -> None:
    parser.add_argument("--base-dir", type=Path, default=d.base_dir,
                        help=f"where the lab lives (default {d.base_dir})")
    parser.add_argument(
        "--pg-port", type=int,
        help=f"pgserver's PostgreSQL port; pgstream's cluster takes the next (default {d.pg_port})",
    )  # fmt: skip
    parser.add_argument("--ssh-port", type=int, help=f"lab sshd port (default {d.ssh_port})")
    parser.add_argument("--address-base", metavar="IP",
                        help=f"pgserver address; bserver and geobserver take the next two "
                        f"(default {d.pg_address})")
    parser.add_argument("--user-prefix", metavar="PREFIX",
                        help="root only: OS users PREFIX-postgres, PREFIX-bmuser, "
                        "PREFIX-geobmuser (default drlab)")
    parser.add_argument("--cron-interval", type=float, metavar="SECONDS",
                        help=f"barman cron period (default {d.cron_interval:g})")
    parser.add_argument("--barman-version", metavar="X.Y.Z",
                        help=f"the Barman the lab runs, installed from PyPI into the lab's own "
                        f"venv when it is not the one drconsole runs with (supported: "
                        f"{OLDEST_SUPPORTED} to {NEWEST_SUPPORTED}; default "
                        f"{d.barman_version})")


def settings_from(args: argparse.Namespace) -> LabSettings:
    s = dataclasses.replace(default_settings(), base_dir=args.base_dir.absolute())
    if args.address_base:
        s = s.with_address_base(args.address_base)
    if args.user_prefix:
        if s.single_user:
            raise LabError("--user-prefix needs root: a single-user lab runs as you")
        s = s.with_user_prefix(args.user_prefix)
    changes = {k: v for k, v in (("pg_port", args.pg_port), ("ssh_port", args.ssh_port),
                                 ("cron_interval", args.cron_interval),
                                 ("barman_version", args.barman_version)) if v is not None}
    if changes:
        s = dataclasses.replace(s, **changes)
    return s.validate()


def _typed_settings(args: argparse.Namespace) -> bool:
    return any(v is not None for v in (args.pg_port, args.ssh_port, args.address_base,
                                       args.user_prefix, args.cron_interval,
                                       args.barman_version))


def _lab(args: argparse.Namespace, quiet: bool) -> Lab:
    def log(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    # down/status (and up without setting flags) use the settings recorded in lab.json.
    if args.action != "up" or not _typed_settings(args):
        lab = Lab.at(args.base_dir.absolute(), log, default=default_settings())
    else:
        lab = Lab(settings_from(args), log)
    if args.action in ("up", "down"):
        problem = mode_error(lab.settings, f"lab {args.action}")
        if problem is not None:
            raise LabError(problem)
    return lab


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        lab = _lab(args, args.quiet or args.json)
        if args.action == "up":
            print(lab.up())
            return 0
        if args.action == "down":
            lab.down()
            return 0
        status = lab.status()
        print(json.dumps(status.to_json(), indent=2) if args.json else status.render())
        return status.exit_code
    except LabError as exc:
        print(f"drconsole lab {args.action}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"drconsole lab {args.action}: interrupted", file=sys.stderr)
        return 130


def demo_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="drconsole demo",
        description="Bring the lab up (if needed) and open the console on it.",
    )
    _add_settings(parser, default_settings())
    args = parser.parse_args(argv)
    args.action = "up"
    try:
        config_path = _lab(args, False).up()
    except LabError as exc:
        print(f"drconsole demo: {exc}", file=sys.stderr)
        return 1
    try:
        from dr_console.tui.launch import run_console
    except ImportError as exc:
        print(f"drconsole demo: the lab is up (config {config_path}) but the console cannot be "
              f"opened: {exc}", file=sys.stderr)
        return 1
    from dr_console.cli import build_parser as console_parser

    result: int = run_console(console_parser().parse_args(["--config", str(config_path)]))
    return result
