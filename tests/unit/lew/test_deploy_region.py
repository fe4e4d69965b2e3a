"""The deploy path's region and failures: samconfig.toml decides a stack's region, and AWS failures are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from lew import cli
from lew.aws_failures import describe_aws_failure, is_local
from lew.errors import LewError
from lew.samconfig import DeployEnvironment, find_samconfig, read_environments, stack_region
from lew.target import stack_region as target_region

REPO_ROOT = Path(__file__).resolve().parents[3]

SAMCONFIG = """\
version = 0.1

[default.global.parameters]
stack_name = "lew"

[default.deploy.parameters]
region = "eu-west-1"

[prod.deploy.parameters]
stack_name = "lew-prod"
region = "ap-southeast-2"

[other.global.parameters]
stack_name = "lew-nowhere"
"""


@pytest.fixture
def samconfig(tmp_path: Path) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text(SAMCONFIG, encoding="utf-8")
    return path


def test_samconfig_environments_read_stack_and_region_from_either_table(samconfig: Path) -> None:
    assert read_environments(samconfig) == (
        DeployEnvironment("default", "lew", "eu-west-1"),
        DeployEnvironment("prod", "lew-prod", "ap-southeast-2"),
        DeployEnvironment("other", "lew-nowhere", None),
    )


@pytest.mark.parametrize(
    ("stack", "region"), [("lew", "eu-west-1"), ("lew-prod", "ap-southeast-2"), ("lew-nowhere", None), ("x", None)]
)
def test_samconfig_stack_region(samconfig: Path, stack: str, region: str | None) -> None:
    assert stack_region(stack, samconfig) == region


def test_samconfig_is_found_from_a_subfolder(samconfig: Path) -> None:
    # GIVEN a folder below the one holding samconfig.toml
    below = samconfig.parent / "a" / "b"
    below.mkdir(parents=True)

    # THEN it is found there, like git finds its repository
    assert find_samconfig(below) == samconfig


def test_samconfig_unreadable_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "samconfig.toml"
    broken.write_text("[default\n", encoding="utf-8")

    with pytest.raises(LewError, match=r"^cannot read .*samconfig.toml: "):
        read_environments(broken)


def test_region_comes_from_the_flag_then_samconfig_then_aws(samconfig: Path) -> None:
    assert target_region("lew", "us-west-2", samconfig) == ("us-west-2", "--region")
    assert target_region("lew", None, samconfig) == ("eu-west-1", "samconfig.toml")
    assert target_region("unknown", None, samconfig) == (None, "your AWS configuration")


def test_the_repository_samconfig_names_the_makefile_stacks() -> None:
    # `make deploy`/`make push` (STACK=lew) and `make deploy-prod`/`make push STACK=lew-prod` meet in one region each
    path = REPO_ROOT / "samconfig.toml"
    assert stack_region("lew", path) == "us-east-1"
    assert stack_region("lew-prod", path) == "us-east-1"


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            EndpointConnectionError(endpoint_url="https://cloudformation.eu-west-1.amazonaws.com/"),
            "cannot reach https://cloudformation.eu-west-1.amazonaws.com/ (EndpointConnectionError): no connection "
            "to AWS; check the network (and a proxy), and the region (--region)",
        ),
        (
            ConnectTimeoutError(endpoint_url="https://sqs.eu-west-1.amazonaws.com/"),
            "cannot reach https://sqs.eu-west-1.amazonaws.com/ (ConnectTimeoutError): no connection to AWS; check "
            "the network (and a proxy), and the region (--region)",
        ),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/"),
            "cannot reach http://127.0.0.1:4566/: is `lew local up` running?",
        ),
        (
            NoCredentialsError(),
            "no AWS credentials found: run `aws configure` (or `aws sso login`) or set AWS_PROFILE "
            "(the local stack, `lew local up`, needs none)",
        ),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            "AWS credentials cannot be used (Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY): "
            "run `aws configure` (or `aws sso login`) or set AWS_PROFILE",
        ),
        (
            ClientError({"Error": {"Code": "ExpiredToken", "Message": "The token is expired."}}, "DescribeStacks"),
            "your AWS credentials have expired (ExpiredToken: The token is expired): refresh them (`aws sso login`, "
            "or new keys)",
        ),
        (
            ClientError({"Error": {"Code": "InvalidClientTokenId", "Message": "bad"}}, "DescribeStacks"),
            "AWS does not accept your credentials (InvalidClientTokenId: bad): run `aws configure` "
            "(or `aws sso login`) or set AWS_PROFILE",
        ),
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeStacks"),
            "AWS denied DescribeStacks (AccessDenied: no): your credentials need that permission",
        ),
    ],
)
def test_aws_failures_are_one_line_that_says_what_to_do(error: Exception, line: str) -> None:
    # WHEN lew (or `make push`'s stack lookup) meets the failure
    # THEN it prints exactly this line
    assert describe_aws_failure(error) == line
    assert cli.describe_failure(error) == line


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://localhost:5000/", True),
        ("http://[::1]:5000", True),
        ("https://sqs.us-east-1.amazonaws.com/", False),
        ("http://10.0.0.1:5000", False),
    ],
)
def test_is_local(url: str, local: bool) -> None:
    assert is_local(url) is local


@pytest.mark.parametrize(
    ("in_samconfig", "line"),
    [
        (True, "stack 'nope' is not in {samconfig} (it names lew, lew-nowhere, lew-prod), so it gives no region, and "
               "your AWS configuration has none: pass --region, or set AWS_REGION"),
        (False, "no samconfig.toml in this folder or above names stack 'nope', and your AWS configuration has none: "
                "pass --region, or set AWS_REGION"),
    ],
)  # fmt: skip
def test_a_stack_samconfig_does_not_name_without_an_aws_region_is_one_line_saying_so(
    samconfig: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], in_samconfig: bool, line: str
) -> None:
    # GIVEN no region in the AWS configuration, and a samconfig.toml that does not name the stack (or none at all)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(samconfig.parent / "no-aws-config"))
    monkeypatch.setattr("lew.target.find_samconfig", lambda: samconfig if in_samconfig else None)

    # WHEN a command names that stack
    code = cli.main(["status", "--stack", "nope"])

    # THEN one line says why there is no region, and what to do (before any AWS call)
    assert code == 1
    assert capsys.readouterr().err == f"lew: error: {line.format(samconfig=samconfig)}\n"
