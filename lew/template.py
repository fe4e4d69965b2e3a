"""Read `template.yaml` the way the local stack needs it: parameter defaults and environment blocks.

CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`, ...) are not YAML that a safe loader knows, so
they are turned into the long form (`{"Ref": ...}`, `{"Fn::Sub": ...}`) on load. Nothing else of the
template is interpreted: the local stack only needs values, never conditions or resources' wiring.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lew.errors import LewError
from lew.files import check_readable_file

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_SUB_REFERENCE = re.compile(r"\$\{([^}!]+)\}")


class CloudFormationLoader(yaml.SafeLoader):
    """A safe YAML loader that also accepts CloudFormation's `!Tag` short forms."""


def _construct_short_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in {"Ref", "Condition"} else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":  # `!GetAtt Res.Attr` is the short form of ["Res", "Attr"]
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{tag_suffix}", node.start_mark)
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _construct_short_tag)


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template into plain dicts, short tags in their long form."""
    if not path.exists() and not path.is_symlink():
        raise LewError(f"template not found: {path} (run lew from the repository, or pass --template)")
    check_readable_file(path, label="template")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise LewError(f"cannot read template {path}: {reason[:1].lower()}{reason[1:]}") from None
    try:
        document = yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise LewError(f"template {path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise LewError(f"template {path} is not a mapping of sections")
    return document


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    """Every parameter's `Default`, as the string CloudFormation would pass (parameters without one are left out)."""
    parameters = template.get("Parameters") or {}
    defaults: dict[str, str] = {}
    for name, spec in parameters.items():
        if isinstance(spec, Mapping) and "Default" in spec:
            defaults[str(name)] = _as_parameter_string(spec["Default"])
    return defaults


def _as_parameter_string(value: Any) -> str:
    if isinstance(value, list):  # a CommaDelimitedList default may be written as a YAML list
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def rate_seconds(expression: str) -> int:
    """Seconds between runs of an EventBridge `rate(N unit)` expression."""
    match = _RATE.match(expression.strip())
    if not match:
        raise LewError(f"schedule {expression!r} is not a rate(N minutes|hours|days) expression")
    count, unit = int(match.group(1)), match.group(2).rstrip("s")
    return count * _RATE_UNIT_SECONDS[unit]


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, Mapping[str, Any]]:
    """The template's resources of one type, by logical id."""
    resources = template.get("Resources") or {}
    return {
        str(logical_id): resource
        for logical_id, resource in resources.items()
        if isinstance(resource, Mapping) and resource.get("Type") == resource_type
    }


def function_environment(template: Mapping[str, Any]) -> dict[str, Any]:
    """The launcher function's environment variables (Globals merged with the function's own), unresolved."""
    merged: dict[str, Any] = {}
    globals_env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    merged.update(globals_env.get("Variables") or {})
    for resource in resources_of_type(template, "AWS::Serverless::Function").values():
        variables = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        if "QUEUE_URL" in variables:  # the launcher is the function that enqueues work
            merged.update(variables)
    return merged


def container_environment(template: Mapping[str, Any], container_name: str) -> dict[str, Any]:
    """The worker container's environment variables in the task definition, unresolved."""
    for resource in resources_of_type(template, "AWS::ECS::TaskDefinition").values():
        for container in (resource.get("Properties") or {}).get("ContainerDefinitions") or []:
            if isinstance(container, Mapping) and container.get("Name") == container_name:
                return {
                    str(entry["Name"]): entry.get("Value")
                    for entry in container.get("Environment") or []
                    if isinstance(entry, Mapping) and "Name" in entry
                }
    return {}


def resolve_value(value: Any, parameters: Mapping[str, str], pseudo: Mapping[str, str]) -> str | None:
    """Resolve a template value made of literals, parameter `Ref`s and `Sub`s of them; None if it needs a resource."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Mapping) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and isinstance(argument, str):
            return parameters.get(argument, pseudo.get(argument))
        if function == "Fn::Sub" and isinstance(argument, str):
            names = _SUB_REFERENCE.findall(argument)
            if all(name in parameters or name in pseudo for name in names):
                return _SUB_REFERENCE.sub(lambda match: parameters.get(match[1], pseudo.get(match[1], "")), argument)
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            separator, items = argument
            parts = [resolve_value(item, parameters, pseudo) for item in items] if isinstance(items, list) else [None]
            if all(part is not None for part in parts):
                return str(separator).join(part for part in parts if part is not None)
    return None
