"""The drconsole config for a lab (<base>/drconsole.toml), in the keys config.py's loader reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from dr_console.lab import sshd
from dr_console.lab.settings import PASSIVE_NODE, PRIMARY_NODE, LabSettings


def pgpass_path(settings: LabSettings) -> Path:
    return settings.console_dir / "pgpass"


def journal_dir(settings: LabSettings) -> Path:
    return settings.console_dir / "journal"


def document(settings: LabSettings) -> dict[str, Any]:
    keys = {
        "ssh_key": str(sshd.console_key(settings)),
        "known_hosts": str(sshd.console_known_hosts(settings)),
    }
    return {
        "console": {"refresh_interval": 5, "journal_dir": str(journal_dir(settings))},
        "nodes": [
            {
                "name": PRIMARY_NODE,
                "site": "Site-X",
                "role": "primary",
                "ssh": f"{settings.barman_user}@{settings.bserver_address}:{settings.ssh_port}",
                **keys,
            },
            {
                "name": PASSIVE_NODE,
                "site": "Site-Y",
                "role": "passive",
                "primary": PRIMARY_NODE,
                "ssh": f"{settings.geo_user}@{settings.geo_address}:{settings.ssh_port}",
                **keys,
            },
        ],
        "servers": [
            {
                "name": cluster.server,
                "conninfo": (
                    f"host={settings.pg_address} port={cluster.port} "
                    f"user={settings.monitor_role} dbname=postgres "
                    f"passfile={pgpass_path(settings)}"
                ),
            }
            for cluster in settings.clusters
        ],
    }


def render(settings: LabSettings) -> str:
    return f"# drconsole config for the lab at {settings.base_dir}\n" + tomli_w.dumps(
        document(settings)
    )


def write(settings: LabSettings) -> Path:
    journal_dir(settings).mkdir(parents=True, exist_ok=True)
    path = settings.config_path
    text = render(settings)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)  # the console warns about configs others can read
    return path
