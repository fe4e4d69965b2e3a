"""The deploy path without AWS: the stack's region comes from samconfig.toml, and `make push` pushes to the
repository of that stack, in its region, or fails in one line before building anything."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from lew.errors import LewError
from lew.target import describe_stack, from_cloudformation, stack_output

REPO_ROOT = Path(__file__).resolve().parents[3]
REPOSITORY_URI = "123456789012.dkr.ecr.{region}.amazonaws.com/lew-repository"


def create_stack(name: str, region: str, outputs: dict[str, str]) -> None:
    """A CloudFormation stack (one queue) with these literal outputs, in moto."""
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = boto3.client("cloudformation", region_name=region)
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture
def samconfig(tmp_path: Path) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text(
        '[default.global.parameters]\nstack_name = "lew"\n\n[default.deploy.parameters]\nregion = "eu-west-1"\n',
        encoding="utf-8",
    )
    return path


def test_stack_is_looked_up_in_samconfigs_region_not_the_default_one(aws: None, samconfig: Path) -> None:
    # GIVEN stack lew deployed to eu-west-1 (samconfig.toml's region), while AWS's default region is us-east-1
    create_stack("lew", "eu-west-1", {"RepositoryUri": REPOSITORY_URI.format(region="eu-west-1")})

    # WHEN lew looks it up without --region
    described = describe_stack("lew", None, samconfig)

    # THEN it is found in eu-west-1
    assert described.region == "eu-west-1"
    assert stack_output(described, "RepositoryUri") == REPOSITORY_URI.format(region="eu-west-1")


def test_missing_stack_names_the_region_and_where_it_came_from(aws: None, samconfig: Path) -> None:
    with pytest.raises(LewError) as raised:
        describe_stack("lew", None, samconfig)

    assert str(raised.value) == (
        "stack 'lew' does not exist in eu-west-1 (the region of samconfig.toml; pass --region to look elsewhere)"
    )


def test_missing_output_is_one_line(aws: None, samconfig: Path) -> None:
    create_stack("lew", "eu-west-1", {"Other": "x"})

    with pytest.raises(LewError) as raised:
        from_cloudformation("lew", "eu-west-1")

    assert str(raised.value) == (
        "stack 'lew' (eu-west-1) has no BucketName output; is it a lew stack, deployed from template.yaml?"
    )


def without_credentials(tmp_path: Path) -> dict[str, str]:
    """An environment in which boto3 finds no credentials anywhere (no variables, files or instance metadata)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_") or key == "AWS_REGION"}
    return environment | {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent"),
        "AWS_CONFIG_FILE": str(tmp_path / "absent"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.mark.slow
def test_stack_output_without_credentials_is_one_line(tmp_path: Path, samconfig: Path) -> None:
    # WHEN `make push`'s stack lookup runs without credentials
    result = subprocess.run(
        [sys.executable, "-m", "lew.stack_output", "lew", "RepositoryUri"],
        cwd=samconfig.parent,
        env=without_credentials(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # THEN it says so in one line and exits 1
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "lew: error: no AWS credentials found: run `aws configure` (or `aws sso login`) or set AWS_PROFILE "
        "(the local stack, `lew local up`, needs none)\n"
    )


def fake_tools(folder: Path, log: Path) -> Path:
    """`docker` and `aws` stand-ins that record their arguments (and what `aws ecr` would print)."""
    folder.mkdir()
    for tool in ("docker", "aws"):
        script = folder / tool
        script.write_text(
            "#!/usr/bin/env bash\n"
            f'echo "{tool} $*" >> {log}\n'
            'if [ "$1" = ecr ]; then echo fake-password; fi\n'
            'if [ "$1" = login ]; then cat > /dev/null; fi\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def make_push(tmp_path: Path, environment: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    tools = fake_tools(tmp_path / "tools", log)
    environment = environment | {"PATH": f"{tools}{os.pathsep}{environment['PATH']}"}
    environment.pop("MAKEFLAGS", None)
    return subprocess.run(
        [shutil.which("make") or "make", "--no-print-directory", "push"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_make_push_without_credentials_fails_in_one_line_before_building(tmp_path: Path) -> None:
    # GIVEN no AWS credentials
    log = tmp_path / "calls.log"

    # WHEN `make push` runs
    result = make_push(tmp_path, without_credentials(tmp_path), log)

    # THEN it stops with lew's one line, and neither docker nor the AWS CLI ran
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        "lew: error: no AWS credentials found: run `aws configure` (or `aws sso login`) or set AWS_PROFILE "
        "(the local stack, `lew local up`, needs none)"
    )
    assert "Traceback" not in result.stderr
    assert not log.exists()


@pytest.mark.slow
def test_make_push_pushes_to_the_repository_of_samconfigs_region(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the repository's samconfig.toml (stack lew in us-east-1) and a CLI default region of eu-west-1
    uri = REPOSITORY_URI.format(region="us-east-1")
    create_stack("lew", "us-east-1", {"RepositoryUri": uri})
    create_stack("lew", "eu-west-1", {"RepositoryUri": REPOSITORY_URI.format(region="eu-west-1")})
    environment = {**os.environ, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    log = tmp_path / "calls.log"

    # WHEN `make push` runs
    result = make_push(tmp_path, environment, log)

    # THEN it built, logged in to the us-east-1 registry and pushed :latest to the us-east-1 stack's repository
    assert result.returncode == 0, result.stdout + result.stderr
    registry = uri.split("/", 1)[0]
    calls = log.read_text().splitlines()
    assert calls[0] == "docker build --platform linux/amd64 --tag lew-worker:latest worker"
    # the password is piped from the AWS CLI into docker login: the two run side by side, in either order
    assert sorted(calls[1:3]) == [
        "aws ecr get-login-password --region us-east-1",
        f"docker login --username AWS --password-stdin {registry}",
    ]
    assert calls[3:] == [f"docker tag lew-worker:latest {uri}:latest", f"docker push {uri}:latest"]
