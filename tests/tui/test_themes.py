"""Themes: shipped TOML files, user themes, invalid files reported once, live switching."""

from __future__ import annotations

from pathlib import Path

import pytest

from dr_console.config import ConsoleConfig
from dr_console.tui.themes import ThemeFileError, load_themes, parse_theme
from tests.tui.fleet_fixture import config, fleet
from tests.tui.helpers import build, notifications, wait_polls

SHIPPED = {"drconsole-dark", "drconsole-light", "drconsole-high-contrast"}


def test_shipped_themes_load_without_errors(tmp_path: Path) -> None:
    themes = load_themes(tmp_path)
    assert set(themes.names) == SHIPPED
    assert themes.errors == []
    light = next(t for t in themes.themes if t.name == "drconsole-light")
    assert light.dark is False


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('name = "x"\nprimary = "#zzzzzz"', "primary: '#zzzzzz' is not a colour"),
        ('primary = "#ffffff"', "'name' is required"),
        ('name = "x"', "'primary' is required"),
        ('name = "x"\nprimary = "#fff"\nshade = "#000"', "unknown key(s): shade"),
        ('name = "x"\nprimary = "#fff"\ndark = "yes"', "dark: must be true or false"),
        ("name = ", "not valid TOML"),
    ],
)
def test_invalid_theme_files_are_explained(text: str, problem: str) -> None:
    with pytest.raises(ThemeFileError, match=r"^mine\.toml: ") as info:
        parse_theme(text, "mine.toml")
    assert problem in str(info.value)


def _user_themes(xdg: Path) -> Path:
    folder = xdg / "drconsole" / "themes"
    folder.mkdir(parents=True)
    (folder / "ocean.toml").write_text('name = "ocean"\nprimary = "#0077be"\n')
    (folder / "broken.toml").write_text('name = "broken"\nprimary = "blue-ish"\n')
    return folder


async def test_invalid_user_theme_is_reported_once_and_valid_one_is_usable(
    _isolated_user_config: Path,
) -> None:
    _user_themes(_isolated_user_config)
    app, _ = build([fleet()], theme="ocean")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("r")
        await wait_polls(pilot, app, 2)
        reported = [m for m in notifications(app) if "broken.toml" in m]
        assert len(reported) == 1
        assert "primary: 'blue-ish' is not a colour" in reported[0]
        assert app.theme == "ocean"
        assert "broken" not in app.available_themes


async def test_t_cycles_themes_and_config_chooses_the_first() -> None:
    cfg = config()
    cfg = type(cfg)(console=ConsoleConfig(theme="drconsole-light"), nodes=cfg.nodes)
    app, _ = build([fleet()], cfg=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        assert app.theme == "drconsole-light"
        await pilot.press("t")
        assert app.theme != "drconsole-light"
        assert app.theme in SHIPPED
        assert f"theme {app.theme}" in notifications(app)


async def test_flag_overrides_config_and_unknown_theme_falls_back_with_a_message() -> None:
    app, _ = build([fleet()], theme="nosuch")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        assert app.theme == "drconsole-dark"
        assert any(m.startswith("unknown theme 'nosuch'") for m in notifications(app))
