"""Local settings: template defaults, visible overrides, processor choice and --param parsing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lew import template as cfn
from lew.errors import LewError
from lew.local import settings as local

REAL_DEFAULTS = cfn.parameter_defaults(cfn.load_template(cfn.DEFAULT_TEMPLATE))
# A template that declares every parameter the local stack reads; a few with values of its own.
OWN_DEFAULTS = {
    "InputPrefix": "uploads/",
    "MaxWorkers": "7",
    "WaitTimeSeconds": "20",
    "Processor": "povray",
    "ReconcileSchedule": "rate(1 minute)",
    "MaxReceiveCount": "3",
}
# The others take the real template's defaults: the launcher and the worker must accept them (lew.local.preflight).
TEMPLATE = "Parameters:\n" + "".join(
    f"  {name}: {{Type: String, Default: '{OWN_DEFAULTS.get(name, REAL_DEFAULTS[name])}'}}\n"
    for name in local.REQUIRED_PARAMETERS
)


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


def test_build_settings_reads_every_value_from_the_template(template_file: Path) -> None:
    settings = local.build_settings(template_file, processor="inventory")

    assert settings.int_parameter("MaxReceiveCount") == 3


def test_build_settings_names_the_parameters_a_template_lacks(tmp_path: Path) -> None:
    # GIVEN a template without MaxReceiveCount and JobTimeout
    path = tmp_path / "template.yaml"
    path.write_text(
        "".join(
            line + "\n" for line in TEMPLATE.splitlines() if "MaxReceiveCount" not in line and "JobTimeout" not in line
        ),
        encoding="utf-8",
    )

    # WHEN the local settings are built THEN the error names both, rather than guessing values
    with pytest.raises(LewError, match="MaxReceiveCount, JobTimeout"):
        local.build_settings(path, processor="inventory")


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
