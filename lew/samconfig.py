"""samconfig.toml: the deploy environments, read so that `lew --stack` and `make push` use the region `sam deploy` used.

The region of a deployed stack lives in one place, samconfig.toml's `region` of the environment whose
`stack_name` it is; `--region` overrides it, and a stack samconfig.toml does not name falls back to the
AWS configuration's region (AWS_REGION, AWS_DEFAULT_REGION, the profile).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lew.errors import LewError

SAMCONFIG = "samconfig.toml"
# Where `sam deploy` reads a key from: the command's own table first, then the environment's global table.
SECTIONS = ("deploy", "global")


@dataclass(frozen=True)
class DeployEnvironment:
    """One `[<name>.*.parameters]` environment of samconfig.toml."""

    name: str
    stack_name: str | None
    region: str | None


def find_samconfig(start: Path | None = None) -> Path | None:
    """samconfig.toml in `start` (the current folder by default) or the nearest folder above it; None if none."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / SAMCONFIG
        if path.is_file():
            return path
    return None


def read_environments(path: Path) -> tuple[DeployEnvironment, ...]:
    """Every environment of a samconfig.toml; LewError naming the file when it cannot be read."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise LewError(f"cannot read {path}: {error}") from None
    return tuple(_environments(document))


def stack_region(stack: str, path: Path | None) -> str | None:
    """The region samconfig.toml deploys `stack` to; None when there is no file or it does not name the stack."""
    if path is None:
        return None
    for environment in read_environments(path):
        if environment.stack_name == stack and environment.region:
            return environment.region
    return None


def _environments(document: Mapping[str, Any]) -> Iterator[DeployEnvironment]:
    for name, tables in document.items():
        if not isinstance(tables, Mapping):
            continue  # `version = 0.1`
        yield DeployEnvironment(name, _setting(tables, "stack_name"), _setting(tables, "region"))


def _setting(tables: Mapping[str, Any], key: str) -> str | None:
    for section in SECTIONS:
        parameters = tables.get(section, {}).get("parameters", {})
        value = parameters.get(key) if isinstance(parameters, Mapping) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
