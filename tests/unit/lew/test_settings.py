"""Local settings: template defaults, visible overrides, processor choice and --param parsing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lew.errors import LewError
from lew.local import settings as local

TEMPLATE = """
Parameters:
  InputPrefix: {Type: String, Default: uploads/}
  MaxWorkers: {Type: Number, Default: 7}
  WaitTimeSeconds: {Type: Number, Default: 20}
  Processor: {Type: String, Default: povray}
  ReconcileSchedule: {Type: String, Default: rate(1 minute)}
"""


@pytest.fixture
def template_file(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


def test_build_settings_takes_template_defaults_and_lists_every_override(template_file: Path) -> None:
    settings = local.build_settings(template_file, processor="inventory", parameters={"MaxWorkers": "2"})

    assert settings.parameter("InputPrefix") == "uploads/"
    assert settings.parameter("MaxWorkers") == "2"
    assert settings.parameter("WaitTimeSeconds") == "2"
    assert settings.processor == "inventory"
    overridden = {o.name: (o.template_value, o.local_value) for o in settings.overrides}
    assert overridden["MaxWorkers"] == ("7", "2")
    assert overridden["WaitTimeSeconds"] == ("20", "2")
    assert overridden["Processor"] == ("povray", "inventory")
    assert overridden["ReconcileSchedule"] == ("rate(1 minute)", "every 5 s")


def test_build_settings_fills_parameters_missing_from_the_template_from_the_contract(template_file: Path) -> None:
    settings = local.build_settings(template_file, processor="inventory")

    assert settings.parameter("ResultPrefix") == "results/"
    assert settings.int_parameter("MaxReceiveCount") == 5


def test_resource_names_follow_the_stack_name() -> None:
    names = local.ResourceNames.for_stack("lew-local", "123456789012", "us-east-1")

    assert names.bucket == "lew-local-123456789012-us-east-1"
    assert names.task_family == "lew-local-worker"
    assert names.cluster == "lew-local"


@pytest.mark.parametrize("name", ["inventory", "command", "my_pkg.render:run"])
def test_validate_processor_accepts_builtins_and_function_references(name: str) -> None:
    assert local.validate_processor(name) == name


@pytest.mark.parametrize("name", ["povary", "pkg:", ":fn", "not a module:fn", ""])
def test_validate_processor_rejects_unknown_names(name: str) -> None:
    with pytest.raises(LewError, match="unknown processor"):
        local.validate_processor(name)


def test_validate_processor_povray_needs_povray_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)

    with pytest.raises(LewError, match="apt-get install povray"):
        local.validate_processor("povray")
    assert local.default_processor() == "inventory"


def test_parse_assignments_reads_name_value_pairs() -> None:
    assert local.parse_assignments(["MaxWorkers=2", "InputPrefix=a=b/"], {"MaxWorkers": "4", "InputPrefix": ""}) == {
        "MaxWorkers": "2",
        "InputPrefix": "a=b/",
    }


@pytest.mark.parametrize(("assignment", "message"), [("MaxWorkers", "expected NAME=VALUE"), ("Nope=1", "no parameter")])
def test_parse_assignments_rejects_bad_input(assignment: str, message: str) -> None:
    with pytest.raises(LewError, match=message):
        local.parse_assignments([assignment], {"MaxWorkers": "4"})
