"""Which stack a command talks to: a deployed one (`--stack`), a local endpoint (`--endpoint`), or the running one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError

from lew.clients import ServiceClients
from lew.errors import LewError
from lew.local.settings import (
    FAKE_ACCESS_KEY,
    FAKE_SECRET_KEY,
    LOCAL_ACCOUNT_ID,
    LOCAL_REGION,
    LOCAL_STACK_NAME,
    ResourceNames,
    template_parameters,
)
from lew.samconfig import find_samconfig, read_environments
from lew.samconfig import stack_region as samconfig_region
from lew.state import LocalState, find_state, read_state
from lew.template import DEFAULT_TEMPLATE, load_template


@dataclass(frozen=True)
class Target(ServiceClients):
    """A stack's resources, and how to reach them."""

    description: str
    bucket: str
    queue_url: str
    dlq_url: str
    cluster: str
    task_family: str
    input_prefix: str
    result_prefix: str
    suffixes: tuple[str, ...]
    endpoint_url: str | None = None
    region: str | None = None
    event_bus: str = ""  # where job state-change events go ("" when unknown)
    events_queue_url: str = ""  # a queue receiving every job event: the local stack has one (`lew events`)
    # Scheduled jobs (lew.schedule): the object each run processes ("" when the stack has no schedule), the
    # schedule's ARN when known, and how to invoke the launcher: the local runtime's inbox, or the function's name.
    schedule_key: str = ""
    schedule_arn: str = ""
    launcher_inbox_url: str = ""
    launcher_function: str = ""
    # The workers' processor and the command processor's ProcessParameters, when known ("" otherwise): job
    # parameters are checked against what the processor declares before an upload (lew.client).
    processor: str = ""
    process_parameters: str = ""

    def session(self) -> boto3.session.Session:
        if self.endpoint_url:  # a local stack: fake credentials, so a real account can never be touched
            return boto3.session.Session(
                aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_SECRET_KEY, region_name=self.region
            )
        return boto3.session.Session(region_name=self.region)

    def client(self, service: str) -> Any:
        return self.session().client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]


def from_local_state(state: LocalState) -> Target:
    return Target(
        description=f"local stack at {state.endpoint}",
        bucket=state.bucket,
        queue_url=state.queue_url,
        dlq_url=state.dlq_url,
        cluster=state.cluster,
        task_family=state.task_family,
        input_prefix=state.input_prefix,
        result_prefix=state.result_prefix,
        suffixes=parse_suffixes(state.suffixes),
        endpoint_url=state.endpoint,
        region=state.region,
        event_bus=state.event_bus,
        events_queue_url=state.events_queue_url,
        schedule_key=state.schedule_key,
        launcher_inbox_url=state.inbox_url,
        processor=state.processor,
        process_parameters=state.process_parameters,
    )


def resolve_target(
    *, endpoint: str | None, stack: str | None, region: str | None, state_file: Path | None = None
) -> Target:
    """Pick the stack: `--stack`, else `--endpoint`, else the running `lew local up` (its state file)."""
    if stack:
        return from_cloudformation(stack, region)
    state = read_state(state_file) if state_file else find_state()  # this folder's stack, or the nearest parent's
    if endpoint:
        endpoint = _valid_endpoint(endpoint)
        if state is not None and state.endpoint.rstrip("/") == endpoint:
            return from_local_state(state)
        return from_local_endpoint(endpoint)
    if state is not None:
        return from_local_state(state)
    raise LewError(
        "no stack to talk to: pass --stack NAME for a deployed stack or --endpoint URL for a local one, "
        "or start one with `lew local up` in another terminal (in this folder or one above it)"
    )


def _valid_endpoint(endpoint: str) -> str:
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LewError(f"--endpoint {endpoint!r} is not a URL like http://127.0.0.1:5000")
    return endpoint.rstrip("/")


def from_local_endpoint(endpoint: str) -> Target:
    """A local stack found only by its endpoint: its resource names are deterministic."""
    names = ResourceNames.for_stack(LOCAL_STACK_NAME, LOCAL_ACCOUNT_ID, LOCAL_REGION)
    defaults = template_defaults()
    partial = Target(
        description=f"local stack at {endpoint}",
        bucket=names.bucket,
        queue_url="",
        dlq_url="",
        cluster=names.cluster,
        task_family=names.task_family,
        input_prefix=defaults["InputPrefix"],
        result_prefix=defaults["ResultPrefix"],
        suffixes=parse_suffixes(defaults["Suffixes"]),
        endpoint_url=endpoint,
        region=LOCAL_REGION,
    )
    sqs = partial.sqs
    try:
        queue_url = sqs.get_queue_url(QueueName=names.work_queue)["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    except ClientError as error:
        raise LewError(
            f"{endpoint} has no lew local stack ({_error_code(error)}); start one with `lew local up`"
        ) from None
    try:  # a stack started before job events existed has no events queue: `lew events` then says so
        events_queue_url = sqs.get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-events")["QueueUrl"]
    except ClientError:
        events_queue_url = ""
    try:
        inbox_url = sqs.get_queue_url(QueueName=names.inbox_queue)["QueueUrl"]
    except ClientError:
        inbox_url = ""
    return Target(
        **{
            **partial.__dict__,
            "queue_url": queue_url,
            "dlq_url": dlq_url,
            "event_bus": f"{LOCAL_STACK_NAME}-jobs",
            "events_queue_url": events_queue_url,
            "launcher_inbox_url": inbox_url,
        }
    )


@dataclass(frozen=True)
class StackDescription:
    """A deployed stack's outputs and parameters, and the region it was found in."""

    name: str
    region: str
    outputs: dict[str, str]
    parameters: dict[str, str]


def stack_region(stack: str, region: str | None, samconfig: Path | None = None) -> tuple[str | None, str]:
    """The region to look for `stack` in, and where that came from: --region, samconfig.toml, or AWS's default."""
    if region:
        return region, "--region"
    configured = samconfig_region(stack, samconfig or find_samconfig())
    if configured:
        return configured, "samconfig.toml"
    return None, "your AWS configuration"


def describe_stack(stack: str, region: str | None, samconfig: Path | None = None) -> StackDescription:
    """DescribeStacks in the stack's region (see `stack_region`); LewError when the stack does not exist there,
    or when no region is known for it (one line saying which samconfig.toml does not name it)."""
    region, source = stack_region(stack, region, samconfig)
    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        raise LewError(no_region_message(stack, samconfig or find_samconfig()))
    cloudformation = session.client("cloudformation")
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        if _error_code(error) == "ValidationError":
            where = cloudformation.meta.region_name
            hint = "" if source == "--region" else f" (the region of {source}; pass --region to look elsewhere)"
            raise LewError(f"stack {stack!r} does not exist in {where}{hint}") from None
        raise
    return StackDescription(
        name=stack,
        region=cloudformation.meta.region_name,
        outputs={item["OutputKey"]: item.get("OutputValue", "") for item in described.get("Outputs", [])},
        parameters={item["ParameterKey"]: item.get("ParameterValue", "") for item in described.get("Parameters", [])},
    )


def no_region_message(stack: str, samconfig: Path | None) -> str:
    """Why `--stack NAME` has no region: samconfig.toml does not name the stack, and AWS's configuration has none."""
    if samconfig is None:
        where = f"no samconfig.toml in this folder or above names stack {stack!r}"
    else:
        named = sorted({env.stack_name for env in read_environments(samconfig) if env.stack_name})
        names = f" (it names {', '.join(named)})" if named else ""
        where = f"stack {stack!r} is not in {samconfig}{names}, so it gives no region"
    return f"{where}, and your AWS configuration has none: pass --region, or set AWS_REGION"


def stack_output(description: StackDescription, name: str) -> str:
    """One output (or parameter) of a lew stack; LewError when the stack has none of that name."""
    value = description.outputs.get(name) or description.parameters.get(name) or ""
    if not value:
        raise LewError(
            f"stack {description.name!r} ({description.region}) has no {name} output; "
            "is it a lew stack, deployed from template.yaml?"
        )
    return value


def from_cloudformation(stack: str, region: str | None) -> Target:
    """A deployed stack, from its CloudFormation outputs (and parameters, for the prefixes)."""
    described = describe_stack(stack, region)

    def output(name: str, *, required: bool = True) -> str:
        if required:
            return stack_output(described, name)
        return described.outputs.get(name) or described.parameters.get(name) or ""

    return Target(
        description=f"stack {stack} ({described.region})",
        bucket=output("BucketName"),
        queue_url=output("QueueUrl"),
        dlq_url=output("DlqUrl", required=False),
        cluster=output("ClusterName", required=False),
        task_family=f"{stack}-worker",
        input_prefix=output("InputPrefix", required=False) or template_defaults()["InputPrefix"],
        result_prefix=output("ResultPrefix", required=False) or template_defaults()["ResultPrefix"],
        suffixes=parse_suffixes(output("Suffixes", required=False) or template_defaults()["Suffixes"]),
        region=described.region,
        event_bus=output("EventBusName", required=False),
        schedule_key=output("ScheduleObjectKey", required=False),
        schedule_arn=output("JobScheduleArn", required=False),
        launcher_function=f"{stack}-launcher",  # the template's FunctionName
        processor=described.parameters.get("Processor", ""),
        process_parameters=described.parameters.get("ProcessParameters", ""),
    )


def template_defaults() -> dict[str, str]:
    """template.yaml's parameter defaults: what a stack uses where it does not say otherwise."""
    return template_parameters(load_template(), DEFAULT_TEMPLATE)


def parse_suffixes(listing: str) -> tuple[str, ...]:
    """The `Suffixes` parameter (comma-separated) as the lower-case suffixes that uploads are checked against."""
    return tuple(item.strip().lower() for item in listing.split(",") if item.strip())


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))
