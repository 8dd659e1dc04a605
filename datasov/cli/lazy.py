"""A click group that imports a command's module only when that command is invoked.

``datasov --help`` lists every command from the registry's one-line helps and imports none of
them; ``datasov datasets`` imports ``datasov.cli.browse`` (and what it needs) and nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """A group whose subcommands are ``name -> ("module[:attribute]", short help)`` entries.

    ``module`` is relative to ``package``; the attribute defaults to the command's name. Commands
    added with :meth:`add_command` still work as in a plain group.
    """

    def __init__(
        self,
        *,
        package: str,
        registry: Mapping[str, tuple[str, str]],
        version: Callable[[], str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.package = package
        self.registry = dict(registry)
        if version is not None:
            self.params.append(_version_option(version, self.name or ""))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.registry, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self.registry.get(cmd_name)
        if entry is None:
            return None
        command = self.load(cmd_name)
        self.commands[cmd_name] = command
        return command

    def load(self, name: str) -> click.Command:
        """Import the module that defines command ``name`` and return the command."""
        module_name, _, attribute = self.registry[name][0].partition(":")
        module = importlib.import_module(f"{self.package}.{module_name}")
        command = getattr(module, attribute or name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module.__name__}.{attribute or name} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the registry's help lines (nothing imported for ``--help``)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            if name in self.registry and name not in self.commands:
                rows.append((name, _shorten(self.registry[name][1], limit)))
            else:
                command = self.commands[name]
                if not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    """As click shortens a command's help for the list: whole words, ``...`` when cut."""
    return click.Command("x", help=text).get_short_help_str(limit)


def _version_option(version: Callable[[], str], prog_name: str) -> click.Option:
    def show(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if not value or ctx.resilient_parsing:
            return
        click.echo(f"{prog_name}, version {version()}")
        ctx.exit()

    return click.Option(
        ["-V", "--version"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=show,
        help="Show the version and exit.",
    )
