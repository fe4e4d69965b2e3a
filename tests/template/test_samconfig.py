"""samconfig.toml: the environments `make deploy` and `make deploy-prod` use, and their overrides exist."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

SAMCONFIG = Path(__file__).resolve().parents[2] / "samconfig.toml"


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as file:
        return tomllib.load(file)


@pytest.mark.parametrize(("environment", "stack_name"), [("default", "lew"), ("prod", "lew-prod")])
def test_samconfig_environment_deploys_safely(samconfig: dict[str, Any], environment: str, stack_name: str) -> None:
    config = samconfig[environment]
    assert config["global"]["parameters"]["stack_name"] == stack_name
    deploy = config["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert deploy["region"]


def test_samconfig_stack_names_fit_the_bucket_name(samconfig: dict[str, Any]) -> None:
    # The bucket is "<stack>-<12-digit account>-<region>": at most 63 lowercase characters.
    for environment in samconfig.values():
        if not isinstance(environment, dict):
            continue
        name = environment["global"]["parameters"]["stack_name"]
        region = environment["deploy"]["parameters"]["region"]
        assert name == name.lower()
        assert len(f"{name}-123456789012-{region}") <= 63


def test_samconfig_overrides_name_real_parameters(samconfig: dict[str, Any], raw_template: dict[str, Any]) -> None:
    overrides = shlex.split(samconfig["prod"]["deploy"]["parameters"]["parameter_overrides"])
    names = {override.split("=", 1)[0] for override in overrides}
    assert names
    assert names <= set(raw_template["Parameters"])
    assert "CapacityProvider=FARGATE" in overrides
