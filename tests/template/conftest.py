"""Helpers for the template tests: load, translate offline with samtranslator, resolve conditions, check IAM."""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "lew",
    "AWS::URLSuffix": "amazonaws.com",
}
# Actions whose API has no resource-level permissions, so "*" is the only possible resource (with a Condition).
STAR_RESOURCE_ACTIONS = frozenset({"ecr:GetAuthorizationToken", "ecs:ListTasks"})
# AWS managed policies SAM attaches to functions: logs for the function and X-Ray for Tracing: Active.
ALLOWED_MANAGED_POLICIES = frozenset(
    {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    }
)
_SUB_REFERENCE = re.compile(r"\$\{[^}]*\}")
_BROAD_ARN = re.compile(r"^arn:[^:]*:[^:]*:[^:]*:[^:]*:\*$")  # a whole service in a region, e.g. arn:aws:sqs:r:a:*


class _NoManagedPolicies:
    """samtranslator's managed policy loader, offline: the template names its managed policies by ARN."""

    def load(self) -> dict[str, str]:
        return {}


def load_template() -> dict[str, Any]:
    """template.yaml as a dict, short tags (!Ref, !Sub...) in their long form."""
    loaded: dict[str, Any] = yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return loaded


def translate(template: Mapping[str, Any], parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run the SAM transform offline, the way `sam validate` does (local CodeUri replaced by an S3 URI).

    ``parameters`` are the values a deploy gives (the others take their defaults): SAM decides some properties,
    such as a function's tracing and its X-Ray policy, from them.
    """
    document = copy.deepcopy(dict(template))
    for resource in document["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/launcher.zip"
    with pytest.MonkeyPatch.context() as patch:  # samtranslator asks boto3 for a region; never a real account's
        patch.setenv("AWS_DEFAULT_REGION", PSEUDO_PARAMETERS["AWS::Region"])
        patch.delenv("AWS_PROFILE", raising=False)
        values = {**PSEUDO_PARAMETERS, **(parameters or {})}
        translated: dict[str, Any] = transform(document, values, _NoManagedPolicies())
    return translated


@pytest.fixture(scope="session")
def raw_template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def translated_template(raw_template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation the SAM transform makes of template.yaml (intrinsics and conditions unresolved)."""
    return translate(raw_template)


# --- Resolving conditions and parameter references ---------------------------------------------------------------

NO_VALUE = object()


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every parameter's default as the string CloudFormation passes, then the overrides."""
    values = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    values.update(overrides or {})
    return values


def resolve(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The template as deployed with these parameters: conditions decided, Fn::If chosen, parameter Refs replaced.

    References to resources (Ref, Fn::GetAtt, Fn::Sub of resources) stay as they are.
    """
    parameters = parameter_values(template, overrides)
    conditions = template.get("Conditions", {})
    evaluator = _Evaluator(parameters, conditions)
    resources = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if "Condition" not in resource or evaluator.condition(resource["Condition"])
    }
    return {
        "Resources": evaluator.value(resources),
        "Outputs": evaluator.value(
            {name: out for name, out in template["Outputs"].items() if evaluator.condition(out.get("Condition", True))}
        ),
    }


@dataclass
class _Evaluator:
    parameters: Mapping[str, str]
    conditions: Mapping[str, Any]

    def condition(self, name_or_value: Any) -> bool:
        if name_or_value is True:
            return True
        return bool(self.value(self.conditions[name_or_value]))

    def value(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.value(entry) for entry in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            intrinsic = self._intrinsics().get(function)
            if intrinsic is not None:
                return intrinsic(argument)
        return {key: item for key, item in ((k, self.value(v)) for k, v in value.items()) if item is not NO_VALUE}

    def _intrinsics(self) -> dict[str, Callable[[Any], Any]]:
        """The functions a condition or Fn::If needs; others (Sub, GetAtt) keep their form, arguments resolved."""
        return {
            "Ref": self._ref,
            "Condition": self.condition,
            "Fn::If": lambda arg: self.value(arg[1] if self.condition(arg[0]) else arg[2]),
            "Fn::Equals": lambda arg: str(self.value(arg[0])) == str(self.value(arg[1])),
            "Fn::Not": lambda arg: not self.value(arg[0]),
            "Fn::And": lambda arg: all(self.value(part) for part in arg),
            "Fn::Or": lambda arg: any(self.value(part) for part in arg),
            "Fn::Split": self._split,
            "Fn::Join": self._join,
        }

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        return self.parameters.get(name, PSEUDO_PARAMETERS.get(name, {"Ref": name}))

    def _split(self, argument: list[Any]) -> Any:
        separator, text = argument[0], self.value(argument[1])
        return text.split(separator) if isinstance(text, str) else {"Fn::Split": [separator, text]}

    def _join(self, argument: list[Any]) -> Any:
        separator, items = argument[0], self.value(argument[1])
        if isinstance(items, list) and all(isinstance(item, str) for item in items):
            return separator.join(items)
        return {"Fn::Join": [separator, items]}


# --- IAM -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement and where it lives."""

    owner: str  # logical id of the role or resource policy
    policy: str
    body: Mapping[str, Any]

    @property
    def actions(self) -> list[str]:
        return as_list(self.body.get("Action", []))

    @property
    def resources(self) -> list[Any]:
        return as_list(self.body.get("Resource", []))

    @property
    def allows(self) -> bool:
        return self.body.get("Effect") == "Allow"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# Resources whose one PolicyDocument is a policy: identity policies, and the bucket and queue resource policies.
POLICY_DOCUMENT_TYPES = frozenset(
    {
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
    }
)


def policy_statements(template: Mapping[str, Any]) -> Iterator[Statement]:
    """Every statement of every identity policy (roles' inline policies, IAM policies) and resource policy."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        documents: list[tuple[str, Mapping[str, Any]]] = []
        if kind == "AWS::IAM::Role":
            documents = [(policy["PolicyName"], policy["PolicyDocument"]) for policy in properties.get("Policies", [])]
        elif kind in POLICY_DOCUMENT_TYPES:
            documents = [(logical_id, properties["PolicyDocument"])]
        for policy_name, document in documents:
            for body in as_list(document["Statement"]):
                yield Statement(logical_id, policy_name, body)


def resource_text(resource: Any) -> str | None:
    """A resource as text when it is a literal or a Fn::Sub string; None for Ref/GetAtt (specific by nature)."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, Mapping) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    return None


def statement_problems(statement: Statement) -> list[str]:
    """What breaks least privilege in an Allow statement: wildcard actions, or '*' resources the API doesn't need."""
    if not statement.allows:
        return []  # Deny statements (TLS-only policies) are meant to be broad
    where = f"{statement.owner}/{statement.policy}/{statement.body.get('Sid', '?')}"
    problems = [f"{where}: wildcard action {action!r}" for action in statement.actions if "*" in action]
    if "NotAction" in statement.body or "NotResource" in statement.body:
        problems.append(f"{where}: NotAction/NotResource grants everything else")
    for resource in statement.resources:
        text = resource_text(resource)
        if text is None or (text != "*" and not _BROAD_ARN.match(_SUB_REFERENCE.sub("x", text))):
            continue
        if text != "*" or not set(statement.actions) <= STAR_RESOURCE_ACTIONS:
            problems.append(f"{where}: resource {text!r} for {statement.actions} (the API allows a narrower one)")
        elif not statement.body.get("Condition"):
            problems.append(f"{where}: resource '*' without a Condition")
    return problems


def pass_role_problems(statement: Statement, task_roles: set[str]) -> list[str]:
    """iam:PassRole must name exactly the task roles and be limited to ecs-tasks.amazonaws.com."""
    if not statement.allows or not any(
        action.lower() in {"iam:passrole", "iam:*", "*"} for action in statement.actions
    ):
        return []
    problems = []
    named = {
        resource["Fn::GetAtt"][0]
        for resource in statement.resources
        if isinstance(resource, Mapping) and "Fn::GetAtt" in resource
    }
    if named != task_roles or len(statement.resources) != len(named):
        problems.append(f"iam:PassRole on {statement.resources}, not exactly the task roles {sorted(task_roles)}")
    passed_to = statement.body.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")
    if passed_to != "ecs-tasks.amazonaws.com":
        problems.append(f"iam:PassRole is not limited to iam:PassedToService ecs-tasks.amazonaws.com ({passed_to!r})")
    return problems


BUCKET = "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"
S3_OBJECT_SCOPES = {
    "read": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/${{InputPrefix}}*",
    "results": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/${{ResultPrefix}}*",
    "claims": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/${{ResultPrefix}}.lew-claims/*.claim.json",
    "cancels": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/${{ResultPrefix}}.lew-claims/*.cancel.json",
    "scheduled": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/${{ScheduleObjectKey}}",  # with a schedule: that key only
}
S3_BUCKET_ARN = f"arn:${{AWS::Partition}}:s3:::{BUCKET}"
S3_READ_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion"}
# Writing results: read back (manifests, claims), put, and the multipart calls of large uploads. Never delete.
S3_RESULT_ACTIONS = {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}


def s3_scope_problems(statements: list[Statement]) -> list[str]:
    """The task role reads under InputPrefix (and the scheduled object), writes under ResultPrefix, deletes only
    claims and cancel markers, lists only results."""
    problems = []
    for statement in statements:
        s3_actions = {action for action in statement.actions if action.startswith("s3:")}
        if not s3_actions or not statement.allows:
            continue
        for resource in statement.resources:
            text = resource_text(resource)
            if text in (S3_OBJECT_SCOPES["read"], S3_OBJECT_SCOPES["scheduled"]) and s3_actions <= S3_READ_ACTIONS:
                continue
            if text == S3_OBJECT_SCOPES["results"] and s3_actions <= S3_RESULT_ACTIONS:
                continue
            if text in (S3_OBJECT_SCOPES["claims"], S3_OBJECT_SCOPES["cancels"]) and s3_actions == {"s3:DeleteObject"}:
                continue
            condition = statement.body.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
            if (
                text == S3_BUCKET_ARN
                and s3_actions == {"s3:ListBucket"}
                and condition == {"Fn::Sub": "${ResultPrefix}*"}
            ):
                continue
            problems.append(f"{statement.body.get('Sid', '?')}: {sorted(s3_actions)} on {text or resource!r}")
    return problems


@pytest.fixture
def resolved(translated_template: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """resolved(**parameters): the translated template as deployed with those parameter values."""

    def resolve_with(**overrides: str) -> dict[str, Any]:
        return resolve(translated_template, overrides)

    return resolve_with


@pytest.fixture(scope="session")
def helpers() -> ModuleType:
    """This module, so that tests can call its pure helpers (pytest's importlib mode cannot import a conftest)."""
    return sys.modules[__name__]
