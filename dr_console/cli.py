"""Command line entry point.

`drconsole` opens the console; `drconsole --run CMD` is headless and never imports Textual;
`drconsole lab …`, `drconsole init …` and `drconsole demo` are tools around them.
Exit codes follow the Nagios convention for `--run` (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN);
a usage error is 2 (argparse), a configuration error 3.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from dr_console import __version__

RUN_COMMANDS = (
    "check", "status", "metrics", "backup", "switch-wal", "recover", "drill", "jobs", "cron",
)  # fmt: skip
FORMATS = ("text", "json", "nagios", "openmetrics")


def _seconds(text: str) -> float:
    """A time limit: a finite number of seconds above 0 (0 and negatives have no one meaning)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number of seconds above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drconsole",
        description=(
            "Terminal operations console for PostgreSQL disaster recovery on Barman. "
            "Without --run it opens the interactive console."
        ),
        epilog=(
            "tools: 'drconsole lab {up,down,status}' runs the reference deployment on loopback; "
            "'drconsole init --node NAME=[USER@]HOST[:PORT]' writes a config from live nodes; "
            "'drconsole demo' brings the lab up and opens the console on it."
        ),
    )
    parser.add_argument("--version", action="version", version=f"drconsole {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="configuration file (default: $DRCONSOLE_CONFIG, ./drconsole.toml, "
        "$XDG_CONFIG_HOME/drconsole/config.toml)",
    )
    parser.add_argument(
        "--readonly",
        action="store_true",
        default=None,
        help="no operations: backup, switch-wal, recover, delete… are not offered",
    )
    parser.add_argument("--theme", metavar="NAME", help="colour theme (overrides the config)")
    parser.add_argument(
        "--run",
        metavar="COMMAND",
        choices=RUN_COMMANDS,
        help="headless: " + ", ".join(RUN_COMMANDS),
    )
    parser.add_argument("--server", metavar="NAME", help="Barman server name")
    parser.add_argument("--node", metavar="NODE", help="Barman node name from the config")
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="headless output format (default text)"
    )
    parser.add_argument("--wait", action="store_true", help="wait for the operation to finish")
    parser.add_argument("--target", metavar="TARGET", help="recovery target (recover, drill)")
    parser.add_argument("--dest", metavar="PATH", help="recovery destination: PATH or HOST:PATH")
    parser.add_argument(
        "--target-action", choices=("promote", "pause", "shutdown"), help="after the target"
    )
    parser.add_argument("--verify", metavar="SQL", help="drill: verification query")
    parser.add_argument(
        "--backup", metavar="ID", help="recover: this backup instead of the automatic choice"
    )
    parser.add_argument(
        "--copy-wal",
        action="store_true",
        help="recover: copy WAL into the destination (no get-wal)",
    )
    parser.add_argument("--standby", action="store_true", help="recover: as a standby")
    parser.add_argument("--jobs", type=int, metavar="N", help="recover: parallel copy jobs")
    parser.add_argument("--yes", action="store_true", help="confirm a destructive operation")
    parser.add_argument(
        "--output", metavar="FILE",
        help="metrics: write to FILE atomically (node_exporter's textfile collector)",
    )  # fmt: skip
    parser.add_argument(
        "--listen", metavar="HOST:PORT",
        help="metrics: serve /metrics from the collector's normal cadence (loopback only)",
    )  # fmt: skip
    parser.add_argument(
        "--listen-any", action="store_true",
        help="metrics: allow --listen on an address other than loopback",
    )  # fmt: skip
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="overall timeout for a headless command (more than 0)",
    )
    parser.add_argument(
        "tool",
        nargs="?",
        choices=("lab", "init", "demo"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("tool_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Tools have their own parsers; hand them everything after the tool word.
    if args_list and args_list[0] in ("lab", "init", "demo"):
        return _run_tool(args_list[0], args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.tool:
        return _run_tool(args.tool, list(args.tool_args))
    if args.run:
        from dr_console.headless import run_headless

        return run_headless(args)
    from dr_console.tui.launch import run_console

    return run_console(args)


def _run_tool(tool: str, argv: list[str]) -> int:
    if tool == "lab":
        from dr_console.lab.cli import main as lab_main

        return lab_main(argv)
    if tool == "init":
        from dr_console.init_config import main as init_main

        return init_main(argv)
    from dr_console.lab.cli import demo_main

    return demo_main(argv)


if __name__ == "__main__":
    sys.exit(main())
