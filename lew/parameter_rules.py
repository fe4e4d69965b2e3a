"""Check parameter values against what the template declares, the way CloudFormation would, before anything starts.

The template is the one source of the rules: each parameter's `Type`, `AllowedValues`, `AllowedPattern`,
`MinValue`/`MaxValue`, `MinLength`/`MaxLength` (with its `ConstraintDescription`), and the template's `Rules`
section. What needs AWS to decide is not checked here: whether a subnet or security group *exists* (only the shape
of its ID is), an SSM parameter's value, and a rule built from functions other than those listed in `_evaluate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")  # CloudFormation's Number: an integer or a float
# AWS-specific parameter types whose values have a checkable shape (existence needs AWS: left to CloudFormation).
_EC2_ID = r"-([0-9a-f]{8}|[0-9a-f]{17})"
ID_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "AWS::EC2::Subnet::Id": (re.compile("subnet" + _EC2_ID), "a subnet ID like subnet-0123456789abcdef0"),
    "AWS::EC2::SecurityGroup::Id": (re.compile("sg" + _EC2_ID), "a security group ID like sg-0123456789abcdef0"),
    "AWS::EC2::VPC::Id": (re.compile("vpc" + _EC2_ID), "a VPC ID like vpc-0123456789abcdef0"),
    "AWS::EC2::Image::Id": (re.compile("ami" + _EC2_ID), "an AMI ID like ami-0123456789abcdef0"),
    "AWS::EC2::Instance::Id": (re.compile("i" + _EC2_ID), "an instance ID like i-0123456789abcdef0"),
    "AWS::EC2::Volume::Id": (re.compile("vol" + _EC2_ID), "a volume ID like vol-0123456789abcdef0"),
    "AWS::EC2::AvailabilityZone::Name": (re.compile(r"[a-z]{2}(-[a-z0-9]+)+[a-z]"), "a zone name like us-east-1a"),
    "AWS::EC2::KeyPair::KeyName": (re.compile(r".{1,255}"), "a key pair name"),
    "AWS::EC2::SecurityGroup::GroupName": (re.compile(r".{1,255}"), "a security group name"),
    "AWS::Route53::HostedZone::Id": (re.compile(r"Z[A-Z0-9]{1,31}"), "a hosted zone ID like Z1D633PJN98FT9"),
    "AWS::SSM::Parameter::Name": (re.compile(r"[A-Za-z0-9_.\-/]{1,2048}"), "an SSM parameter name"),
}


def parameter_problem(name: str, value: str, spec: Mapping[str, Any]) -> str | None:
    """Why `value` breaks what the template declares for parameter `name`, in words naming the rule; None if it fits."""
    declared = str(spec.get("Type", "String"))
    problem = _type_problem(value, declared)
    if problem is not None:
        return problem
    if declared == "CommaDelimitedList":
        items = value.split(",")
    elif declared.startswith("List<"):
        items = [item.strip() for item in value.split(",")] if value else []
    else:
        items = [value]
    for item in items:
        problem = _constraint_problem(item, spec, declared)
        if problem is not None:
            about = f"item {item!r} " if declared == "CommaDelimitedList" or declared.startswith("List<") else ""
            described = spec.get("ConstraintDescription")
            return f"{about}{problem}" + (f" ({described})" if described else "")
    return None


def _type_problem(value: str, declared: str) -> str | None:
    if declared == "Number":
        return None if NUMBER.fullmatch(value) else "not a number (Type Number)"
    if declared.startswith("List<") and declared.endswith(">"):
        inner = declared[len("List<") : -1]
        for item in (item.strip() for item in value.split(",")) if value else ():
            problem = _type_problem(item, inner)
            if problem is not None:
                return f"item {item!r} is {problem.split(' (', 1)[0]} (Type {declared})"
        return None
    shape = ID_SHAPES.get(declared) or (
        ID_SHAPES["AWS::SSM::Parameter::Name"] if declared.startswith("AWS::SSM::Parameter::Value<") else None
    )
    if shape is not None and not shape[0].fullmatch(value):
        return f"not {shape[1]} (Type {declared})"
    return None


def _constraint_problem(value: str, spec: Mapping[str, Any], declared: str) -> str | None:
    allowed = spec.get("AllowedValues")
    if isinstance(allowed, list) and allowed and not _is_allowed(value, allowed, numeric=declared == "Number"):
        return f"not one of the AllowedValues {', '.join(str(item) for item in allowed)}"
    pattern = spec.get("AllowedPattern")
    if pattern is not None and declared != "Number" and not re.fullmatch(str(pattern), value):
        return f"does not match the AllowedPattern {pattern}"
    if declared in ("Number", "List<Number>"):
        return _range_problem(value, spec)
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"shorter than the MinLength {spec['MinLength']}"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"longer than the MaxLength {spec['MaxLength']}"
    return None


def _range_problem(value: str, spec: Mapping[str, Any]) -> str | None:
    number = float(value)  # the type check has passed
    if "MinValue" in spec and number < float(spec["MinValue"]):
        return f"below the MinValue {spec['MinValue']}"
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        return f"above the MaxValue {spec['MaxValue']}"
    return None


def _is_allowed(value: str, allowed: Sequence[Any], *, numeric: bool) -> bool:
    if numeric and NUMBER.fullmatch(value):  # a Number's allowed 30 accepts "30.0" too
        return any(NUMBER.fullmatch(str(item)) and float(item) == float(value) for item in allowed)
    return value in {_as_text(item) for item in allowed}


def _as_text(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    return str(item)


# -- the template's Rules section ---------------------------------------------------------------------------------


class Undecidable(Exception):  # noqa: N818  # not an error: the rule needs something only CloudFormation has
    """A rule uses a function or value that cannot be evaluated locally."""


@dataclass(frozen=True)
class BrokenRule:
    """An assertion of the template's Rules that the values break, and the parameters it reads."""

    rule: str
    description: str
    parameters: tuple[str, ...]


def broken_rules(template: Mapping[str, Any], values: Mapping[str, str]) -> list[BrokenRule]:
    """Every assertion of the template's Rules that `values` break.

    Rules whose condition or assertion needs AWS (`Fn::ValueOf`, `Fn::RefAll`, ...) are left to CloudFormation.
    """
    broken = []
    for rule_name, rule in (template.get("Rules") or {}).items():
        if not isinstance(rule, Mapping):
            continue
        try:
            if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], values):
                continue
            for assertion in rule.get("Assertions") or []:
                if not _evaluate(assertion.get("Assert"), values):
                    description = str(assertion.get("AssertDescription", "assertion failed"))
                    names = tuple(sorted(_references(rule)))
                    broken.append(BrokenRule(str(rule_name), description, names))
        except Undecidable:
            continue
    return broken


def _evaluate(node: Any, values: Mapping[str, str]) -> Any:
    """Evaluate the functions that a rule can use on parameter values alone."""
    if isinstance(node, str | int | float):
        return node if isinstance(node, str) else _as_text(node)
    if isinstance(node, list):
        return [_evaluate(item, values) for item in node]
    if not isinstance(node, Mapping) or len(node) != 1:
        raise Undecidable(repr(node))
    ((function, argument),) = node.items()
    if function == "Ref":
        if argument not in values:
            raise Undecidable(argument)  # a pseudo parameter such as AWS::Region
        return values[argument]
    if function not in RULE_FUNCTIONS:
        raise Undecidable(function)
    return RULE_FUNCTIONS[function](_evaluate(argument, values))


RULE_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "Fn::Equals": lambda arguments: arguments[0] == arguments[1],
    "Fn::Not": lambda arguments: not arguments[0],
    "Fn::And": all,
    "Fn::Or": any,
    "Fn::Contains": lambda arguments: arguments[1] in arguments[0],
    "Fn::EachMemberEquals": lambda arguments: all(item == arguments[1] for item in _as_list(arguments[0])),
    "Fn::EachMemberIn": lambda arguments: set(_as_list(arguments[0])) <= set(_as_list(arguments[1])),
    "Fn::Join": lambda arguments: str(arguments[0]).join(_as_list(arguments[1])),
    "Fn::Split": lambda arguments: str(arguments[1]).split(str(arguments[0])),
}


def _references(node: Any) -> set[str]:
    if isinstance(node, Mapping):
        found = {str(node["Ref"])} if isinstance(node.get("Ref"), str) else set()
        return found.union(*(_references(item) for item in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node))
    return set()


def _as_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else str(value).split(",")
