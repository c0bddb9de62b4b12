"""Command palette provider: every action of the keymap registry that applies on the current
screen (operations only where they apply, and never in read-only), plus one entry per theme."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from dr_console.tui import keymap

if TYPE_CHECKING:
    from dr_console.tui.app import DrConsoleApp


class ActionsProvider(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        from dr_console.tui.app import DrConsoleApp

        app = self.app
        assert isinstance(app, DrConsoleApp)
        screen = self.screen
        scopes: set[str] = {"app", getattr(screen, "SCOPE", ""), *getattr(screen, "SCOPES", ())}
        found: list[tuple[str, Callable[[], object], str]] = []
        for spec in keymap.REGISTRY:
            if spec.scope not in scopes or spec.action == "command_palette":
                continue
            if spec.operation and app.readonly:
                continue
            key = spec.key_display or spec.keys
            target = app if spec.scope == "app" else screen
            found.append(
                (
                    f"{spec.description} ({key})",
                    partial(app.run_action, spec.action, target),
                    spec.help,
                )
            )
        found.extend(_theme_commands(app))
        return found

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, text=title, help=help_text)

    async def discover(self) -> Hits:
        for title, command, help_text in self._commands():
            yield DiscoveryHit(title, command, text=title, help=help_text)


def _theme_commands(app: DrConsoleApp) -> list[tuple[str, Callable[[], object], str]]:
    return [
        (f"theme: {name}", partial(app.use_theme, name), f"Switch to the {name} theme")
        for name in app.theme_names
    ]
