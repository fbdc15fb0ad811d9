"""Flags and `AGENT_ASSIST_*` variables for a settings dataclass: parse, convert, check, list.

A field made with `of(Config, "name", help)` is one field of a component's config and takes its
default from there; `own(default, help)` states its own. Its flag is `--field-name`, its
variable `AGENT_ASSIST_FIELD_NAME` (plus `env`, a conventional name, where given), and any of
those variables with `_FILE` appended names a file that holds the value (a mounted secret, so
that no secret needs a flag, which `ps` would show, or a variable). Enum and
`Literal` fields are choices: argparse lists them, and `check_choices` refuses any other value
with an error that names the flag, the variables and the allowed values.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ENV_PREFIX = "AGENT_ASSIST_"
T = TypeVar("T", bound="DataclassInstance")


def of(
    config: type[Any], name: str, help: str, env: str | None = None, secret: bool = False
) -> Any:
    """A setting that is one field of a component's config, with that field's default.
    A `secret` one is left out of reprs and masked wherever settings are shown."""
    (default,) = [f.default for f in dataclasses.fields(config) if f.name == name]
    assert default is not dataclasses.MISSING, f"{config.__name__}.{name} has no plain default"
    meta = {"help": help, "env": env, "config": config, "field": name, "secret": secret}
    return field(default=default, metadata=meta, repr=not secret)


def own(default: Any, help: str, env: str | None = None, secret: bool = False) -> Any:
    """A setting of the process itself, or one whose form differs from its component's."""
    meta = {"help": help, "env": env, "secret": secret}
    return field(default=default, metadata=meta, repr=not secret)


def shown_settings(settings: Any) -> dict[str, Any]:
    """Every setting's value as `agent-assist settings` prints it: secrets as `***` when set."""
    out = {}
    for f in dataclasses.fields(settings):
        value = shown(getattr(settings, f.name))
        if f.metadata.get("secret") and value:
            value = "***"
        out[f.name] = value if isinstance(value, str | int | float | bool | None) else str(value)
    return out


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_names(f: dataclasses.Field[Any]) -> list[str]:
    names = [ENV_PREFIX + f.name.upper()]
    if f.metadata.get("env"):
        names.append(f.metadata["env"])
    return names


def converter(tp: Any) -> tuple[Callable[[str], Any], tuple[str, ...] | None]:
    """The str -> value function for a field's type (Optional unwrapped), and its choices."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    if tp is bool:
        return (lambda s: s.strip().lower() in ("1", "true", "yes", "on")), None
    if typing.get_origin(tp) is Literal:
        return str, tuple(typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp, tuple(str(e.value) for e in tp)
    return tp, None


def shown(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def check_choices(settings: Any) -> None:
    """Refuse a choice outside its enum or `Literal`; turn an enum's text into the enum."""
    hints = typing.get_type_hints(type(settings))
    for f in dataclasses.fields(settings):
        convert, choices = converter(hints[f.name])
        if choices is None:
            continue
        value = shown(getattr(settings, f.name))
        if value not in choices:
            names = " / ".join([flag(f.name), *env_names(f)])
            raise ValueError(f"{names}: {value!r} is not one of {', '.join(choices)}")
        object.__setattr__(settings, f.name, convert(value))


def add_arguments(parser: argparse.ArgumentParser, cls: type[Any], title: str) -> None:
    """One flag per field; unset flags stay None so the environment can fill them."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        convert, choices = converter(hints[f.name])
        group.add_argument(
            flag(f.name),
            dest=f.name,
            type=str if choices else convert,
            choices=choices,
            default=None,
            nargs="?" if hints[f.name] is bool else None,  # a bare --flag is true
            const=True if hints[f.name] is bool else None,
            metavar=f.name.split("_")[-1].upper(),
            help=f"{f.metadata['help']} (default: {shown(f.default)})",
        )


def load(cls: type[T], args: argparse.Namespace | None, environ: Mapping[str, str]) -> T:
    """Flags, then variables, then defaults; a bad value exits naming its flag or variable."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        flag_value = getattr(args, f.name, None) if args is not None else None
        if flag_value is not None:
            values[f.name] = flag_value
            continue
        for env in env_names(f):
            raw = from_environment(environ, env)
            if raw is not None:
                convert, choices = converter(hints[f.name])
                try:  # a choice is checked with the others, by `check_choices`
                    values[f.name] = raw if choices else convert(raw)
                except ValueError as exc:
                    raise SystemExit(f"{env}={raw!r}: {exc}") from None
                break
    try:
        return cls(**values)
    except ValueError as exc:  # a choice not among the allowed ones
        raise SystemExit(str(exc)) from None


def from_environment(environ: Mapping[str, str], name: str) -> str | None:
    """A variable's value, or the content of the file its `_FILE` twin names (one line, its end
    stripped); None when neither is set."""
    if name in environ:
        return environ[name]
    path = environ.get(name + "_FILE")
    if path is None:
        return None
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise SystemExit(f"{name}_FILE={path!r}: {exc.strerror or exc}") from None


def markdown_table(cls: type[Any]) -> str:
    rows = ["| flag | variable | default | what it sets |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        env = " / ".join(f"`{n}`" for n in env_names(f))
        default = "unset" if f.default is None else f"`{shown(f.default)}`"
        rows.append(f"| `{flag(f.name)}` | {env} | {default} | {f.metadata['help']} |")
    return "\n".join(rows) + "\n"
