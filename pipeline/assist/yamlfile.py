"""User-editable YAML files (rules, knowledge base): parsed with line numbers, so that a mistake
is refused naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    def __init__(self, file: Path | str, line: int, field: str, problem: str) -> None:
        super().__init__(f"{file}:{line}: {field}: {problem}")
        self.file, self.line, self.field = str(file), line, field


def line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def mapping(node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Field name -> (key node, value node)."""
    return {str(k.value): (k, v) for k, v in node.value}


def scalar(node: yaml.Node) -> Any:
    """The plain Python value of a node."""
    return yaml.safe_load(yaml.serialize(node))


def entries(path: Path, key: str) -> list[yaml.Node]:
    """The nodes of the list under `key` in a `version: 1` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, 0, "file", f"cannot be read ({exc.strerror})") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = mark.line + 1 if mark is not None else 0
        raise ConfigError(path, at, "yaml", str(getattr(exc, "problem", exc))) from exc
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(path, line(root), key, f"the file must be a mapping with `{key}:`")
    top = mapping(root)
    version = top.get("version")
    if version is not None and scalar(version[1]) != 1:
        raise ConfigError(path, line(version[0]), "version", "only version 1 is known")
    if key not in top or not isinstance(top[key][1], yaml.SequenceNode):
        raise ConfigError(path, line(root), key, f"a list of {key} is required")
    return list(top[key][1].value)
