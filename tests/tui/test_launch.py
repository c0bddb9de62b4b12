"""run_console: configuration problems are one clear line on stderr and exit code 3."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dr_console.tui.launch import run_console
from tests.tui.fleet_fixture import config, fleet
from tests.tui.helpers import build


def _args(**values: object) -> argparse.Namespace:
    base: dict[str, object] = {"config": None, "theme": None, "readonly": None}
    base.update(values)
    return argparse.Namespace(**base)


def test_no_config_anywhere_suggests_demo_and_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRCONSOLE_CONFIG", raising=False)
    assert run_console(_args()) == 3
    err = capsys.readouterr().err
    assert "no configuration found" in err
    assert "drconsole demo" in err and "drconsole init" in err


def test_config_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "drconsole.toml"
    bad.write_text("[console]\nrefresh_intervall = 5\n")
    assert run_console(_args(config=str(bad))) == 3
    err = capsys.readouterr().err
    assert err.startswith("drconsole: ")
    assert err.count("\n") == 1
    assert "refresh_intervall" in err
    assert "Traceback" not in err


def test_readonly_and_theme_apply_only_when_given() -> None:
    app, _ = build([fleet()])
    assert app.readonly is False
    assert app._wanted_theme == config().console.theme
    app, _ = build([fleet()], readonly=True, theme="drconsole-light")
    assert app.readonly is True
    assert app._wanted_theme == "drconsole-light"
