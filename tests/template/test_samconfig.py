"""samconfig.toml: the environments `make deploy` and `make deploy-prod` use, and their overrides exist; a first
deploy needs no answers (every parameter has a default that its own rules accept)."""

from __future__ import annotations

import re
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
    shared = config["global"]["parameters"]
    # name and region in `global`: sam deploy, sam delete and sam logs, `make push` and `lew --stack` all read them
    assert shared["stack_name"] == stack_name
    assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", shared["region"])
    deploy = config["deploy"]["parameters"]
    assert "region" not in deploy
    assert "stack_name" not in deploy
    # everything `sam deploy --guided` would ask is answered, so `make deploy` works on a first deploy too
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True


def test_samconfig_stack_names_fit_the_bucket_name(samconfig: dict[str, Any]) -> None:
    # The bucket is "<stack>-<12-digit account>-<region>": at most 63 lowercase characters.
    for environment in samconfig.values():
        if not isinstance(environment, dict):
            continue
        name = environment["global"]["parameters"]["stack_name"]
        region = environment["global"]["parameters"]["region"]
        assert name == name.lower()
        assert len(f"{name}-123456789012-{region}") <= 63


def test_samconfig_overrides_name_real_parameters(samconfig: dict[str, Any], raw_template: dict[str, Any]) -> None:
    overrides = shlex.split(samconfig["prod"]["deploy"]["parameters"]["parameter_overrides"])
    names = {override.split("=", 1)[0] for override in overrides}
    assert names
    assert names <= set(raw_template["Parameters"])
    assert "CapacityProvider=FARGATE" in overrides


def test_every_template_parameter_has_a_default_its_rules_accept(raw_template: dict[str, Any]) -> None:
    # GIVEN the template's parameters: `sam deploy` uses their defaults, and `--guided` offers them (Enter keeps one)
    for name, parameter in raw_template["Parameters"].items():
        # THEN each has a default
        assert "Default" in parameter, f"{name} has no Default: a first deploy would have to answer it"
        default = parameter["Default"]
        text = str(default)
        # AND the default passes the parameter's own rules, so that accepting it deploys
        if "AllowedValues" in parameter:
            assert default in parameter["AllowedValues"], name
        if "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], text), name
        if parameter["Type"] == "Number":
            assert parameter.get("MinValue", default) <= default <= parameter.get("MaxValue", default), name
        if parameter["Type"] == "String":
            assert parameter.get("MinLength", 0) <= len(text) <= parameter.get("MaxLength", len(text)), name
