"""Themes as validated data: TOML files -> textual Theme objects.

Shipped themes come from the `dr_console.shipped_themes` package (the repository's themes/ dir,
mapped by pyproject), user themes from $XDG_CONFIG_HOME/drconsole/themes/. A bad file never stops
the console: it is skipped and its problem is returned so the app can report it once.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from dr_console.config import ConfigError, read_config_bytes

DEFAULT_THEME = "drconsole-dark"
COLOUR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "success",
    "warning",
    "error",
)
_ALLOWED = {"name", "dark", *COLOUR_KEYS}


class ThemeFileError(ValueError):
    """A theme file that cannot be used, phrased for the user: "FILE: what is wrong"."""


@dataclass
class ThemeSet:
    themes: list[Theme] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.themes]


def parse_theme(text: str, source: str) -> Theme:
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ThemeFileError(f"{source}: arrays or tables nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _ALLOWED)
    if unknown:
        raise ThemeFileError(f"{source}: unknown key(s): {', '.join(unknown)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(f"{source}: 'name' is required and must be a non-empty string")
    if "primary" not in data:
        raise ThemeFileError(f"{source}: 'primary' is required")
    colours: dict[str, str] = {}
    for key in COLOUR_KEYS:
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str):
            raise ThemeFileError(f'{source}: {key}: must be a colour string like "#1f5f9e"')
        try:
            Color.parse(value)
        except ColorParseError:
            raise ThemeFileError(f"{source}: {key}: {value!r} is not a colour") from None
        colours[key] = value
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"{source}: dark: must be true or false")
    return Theme(
        name=name.strip(),
        primary=colours["primary"],
        secondary=colours.get("secondary"),
        accent=colours.get("accent"),
        foreground=colours.get("foreground"),
        background=colours.get("background"),
        surface=colours.get("surface"),
        panel=colours.get("panel"),
        success=colours.get("success"),
        warning=colours.get("warning"),
        error=colours.get("error"),
        dark=dark,
    )


def _load_files(files: Iterable[Traversable | Path], into: ThemeSet) -> None:
    for item in sorted(files, key=lambda f: f.name):
        if not item.name.endswith(".toml"):
            continue
        source = str(item)
        try:
            if isinstance(item, Path):
                text = read_config_bytes(item, "theme file").decode("utf-8")
            else:  # a theme shipped in the package
                text = item.read_text(encoding="utf-8")
        except ConfigError as exc:
            into.errors.append(str(exc))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            into.errors.append(f"{source}: cannot read: {exc}")
            continue
        try:
            into.themes.append(parse_theme(text, source))
        except ThemeFileError as exc:
            into.errors.append(str(exc))


def shipped_theme_files() -> list[Traversable | Path]:
    try:
        root: Traversable = resources.files("dr_console.shipped_themes")
        files: list[Traversable | Path] = [f for f in root.iterdir() if f.is_file()]
        if files:
            return files
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    # Running from a checkout without an install: the repository's themes/ directory.
    checkout = Path(__file__).resolve().parents[2] / "themes"
    return [*sorted(checkout.glob("*.toml"))] if checkout.is_dir() else []


def user_theme_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "drconsole" / "themes"


def load_themes(user_dir: Path | None = None) -> ThemeSet:
    """Shipped themes first, then user themes (a user theme may replace a shipped one by name)."""
    result = ThemeSet()
    _load_files(shipped_theme_files(), result)
    directory = user_theme_dir() if user_dir is None else user_dir
    if directory.is_dir():
        _load_files(directory.glob("*.toml"), result)
    by_name: dict[str, Theme] = {}
    for theme in result.themes:
        by_name[theme.name] = theme
    result.themes = list(by_name.values())
    return result
