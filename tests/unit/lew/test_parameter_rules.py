"""`--param` values are checked against template.yaml's declarations before anything starts: one line, exit 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lew import cli
from lew.parameter_rules import broken_rules, parameter_problem
from lew.template import DEFAULT_TEMPLATE, load_template, parameter_defaults


@pytest.fixture(autouse=True)
def in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def no_stack_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that lets a bad value through must fail here, not start a stack that runs until killed."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stack was started although its input is bad")

    monkeypatch.setattr("lew.local.stack.LocalStack.start", refuse)


TEMPLATE = "template.yaml"


@pytest.mark.parametrize("command", [["demo"], ["local", "up"]])
@pytest.mark.parametrize(
    ("param", "line"),
    [
        ("MaxWorkers=abc", "--param MaxWorkers='abc': not a number (Type Number); see MaxWorkers in template.yaml"),
        ("MaxWorkers=", "--param MaxWorkers='': not a number (Type Number); see MaxWorkers in template.yaml"),
        ("MaxWorkers=-1", "--param MaxWorkers='-1': below the MinValue 0; see MaxWorkers in template.yaml"),
        (
            "WaitTimeSeconds=99",
            "--param WaitTimeSeconds='99': above the MaxValue 20; see WaitTimeSeconds in template.yaml",
        ),
        (
            "CapacityProvider=BOGUS",
            "--param CapacityProvider='BOGUS': not one of the AllowedValues FARGATE, FARGATE_SPOT;"
            " see CapacityProvider in template.yaml",
        ),
        (
            "Suffixes=.zip;.tar",
            "--param Suffixes='.zip;.tar': does not match the AllowedPattern ^[A-Za-z0-9._,-]*$"
            " (comma-separated suffixes like .zip,.tgz (empty accepts every key)); see Suffixes in template.yaml",
        ),
        (
            "ResultPrefix=incoming/",
            "--param ResultPrefix='incoming/': breaks the rule PrefixesDiffer of template.yaml:"
            " InputPrefix and ResultPrefix must differ, or every result would be processed again.",
        ),
        (
            "WorkerMemory=1024",
            "--param WorkerMemory='1024': 1 GB is not a Fargate size for 1 vCPU (2-8 GB in 1 GB steps);"
            " WorkerCpu is 1024 units, WorkerMemory 1024 MiB",
        ),
        (
            "ScheduleExpression=rate(1 day)",
            "--param ScheduleExpression='rate(1 day)': breaks the rule ScheduleNeedsObject of template.yaml:"
            " A ScheduleExpression needs a ScheduleObjectKey, the S3 key that every scheduled run processes.",
        ),
        (
            "ScheduleObjectKey=schedules/etl.zip",
            "--param ScheduleObjectKey='schedules/etl.zip': breaks the rule ObjectNeedsSchedule of template.yaml:"
            " A ScheduleObjectKey is processed only on a schedule; give a ScheduleExpression too (or neither).",
        ),
        (
            "ScheduleExpression=every day",
            "--param ScheduleExpression='every day': does not match the AllowedPattern "
            r"^$|^rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)$|^cron\(\S+( \S+){5}\)$"
            r"|^at\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\)$"
            " (rate(1 day), cron(0 3 * * ? *) (six fields) or at(2027-01-01T03:00:00), or empty);"
            " see ScheduleExpression in template.yaml",
        ),
        (
            "ScheduleObjectKey=schedules/*.zip",
            "--param ScheduleObjectKey='schedules/*.zip': does not match the AllowedPattern "
            r'^([^\x00-\x1f\x7f"\\*?$<>]*[^\x00-\x1f\x7f"\\*?$<>/])?$'
            """ (an object's key (not ending in /) without ", \\, *, ?, $, <, > or control characters);"""
            " see ScheduleObjectKey in template.yaml",
        ),
        (
            "ScheduleTimezone=Europe Berlin",
            "--param ScheduleTimezone='Europe Berlin': does not match the AllowedPattern"
            " ^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$ (an IANA time zone name like UTC or Europe/Berlin);"
            " see ScheduleTimezone in template.yaml",
        ),
        ("MaxWorkers", "--param 'MaxWorkers': expected NAME=VALUE, e.g. MaxWorkers=2"),
    ],
)
def test_a_param_the_template_does_not_allow_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], command: list[str], param: str, line: str
) -> None:
    # WHEN lew demo or lew local up gets a --param that template.yaml does not allow
    code = cli.main([*command, "--processor", "inventory", "--param", param])

    # THEN it stops at once, before any stack starts, with one line naming the parameter, the value and the rule
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == f"lew: error: {line}\n"
    assert captured.out == ""


@pytest.mark.parametrize(
    ("spec", "value", "problem"),
    [
        ({"Type": "String", "MinLength": 3}, "ab", "shorter than the MinLength 3"),
        ({"Type": "String", "MaxLength": 3}, "abcd", "longer than the MaxLength 3"),
        ({"Type": "String", "AllowedPattern": "[a-z]+", "ConstraintDescription": "lower case"}, "A",
         "does not match the AllowedPattern [a-z]+ (lower case)"),
        ({"Type": "Number", "AllowedValues": [1, 3]}, "2", "not one of the AllowedValues 1, 3"),
        ({"Type": "Number"}, "1e", "not a number (Type Number)"),
        ({"Type": "Number"}, "nan", "not a number (Type Number)"),
        ({"Type": "List<Number>"}, "1,x", "item 'x' is not a number (Type List<Number>)"),
        ({"Type": "List<Number>", "MaxValue": 5}, "1,7", "item '7' above the MaxValue 5"),
        ({"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]}, "a,c",
         "item 'c' not one of the AllowedValues a, b"),
        ({"Type": "AWS::EC2::Subnet::Id"}, "subnet-1",
         "not a subnet ID like subnet-0123456789abcdef0 (Type AWS::EC2::Subnet::Id)"),
        ({"Type": "List<AWS::EC2::SecurityGroup::Id>"}, "sg-0123456789abcdef0,sg-x",
         "item 'sg-x' is not a security group ID like sg-0123456789abcdef0 (Type List<AWS::EC2::SecurityGroup::Id>)"),
    ],
)  # fmt: skip
def test_parameter_problem_names_the_rule_each_kind_of_declaration_breaks(
    spec: dict[str, Any], value: str, problem: str
) -> None:
    assert parameter_problem("P", value, spec) == problem


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"Type": "Number", "MinValue": 1, "MaxValue": 10}, "2.5"),
        ({"Type": "Number", "AllowedValues": [30]}, "30.0"),
        ({"Type": "String", "AllowedValues": ["a", ""]}, ""),
        ({"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]}, "b,a"),
        ({"Type": "List<AWS::EC2::Subnet::Id>"}, "subnet-0123456789abcdef0,subnet-01234567"),
        ({"Type": "AWS::SSM::Parameter::Value<String>"}, "/lew/image"),
    ],
)
def test_parameter_problem_accepts_what_the_declaration_allows(spec: dict[str, Any], value: str) -> None:
    assert parameter_problem("P", value, spec) is None


def test_broken_rules_skips_rules_that_need_aws() -> None:
    template = {
        "Rules": {
            "Local": {"Assertions": [{"Assert": {"Fn::Equals": [{"Ref": "A"}, "x"]}, "AssertDescription": "A is x"}]},
            "NeedsAws": {"Assertions": [{"Assert": {"Fn::Contains": [{"Fn::ValueOfAll": ["T", "VpcId"]}, "v"]}}]},
            "PseudoParameter": {"Assertions": [{"Assert": {"Fn::Equals": [{"Ref": "AWS::Region"}, "x"]}}]},
        }
    }

    broken = broken_rules(template, {"A": "y"})

    assert [(rule.rule, rule.description, rule.parameters) for rule in broken] == [("Local", "A is x", ("A",))]


def test_the_templates_defaults_pass_its_own_parameter_rules_and_rules_section() -> None:
    # GIVEN template.yaml, whose defaults the local stack (and a first deploy) uses
    template = load_template(DEFAULT_TEMPLATE)
    defaults = parameter_defaults(template)

    # THEN the checker that refuses bad --param values accepts every default, and the Rules hold for them
    problems = {name: parameter_problem(name, value, template["Parameters"][name]) for name, value in defaults.items()}
    assert {name: problem for name, problem in problems.items() if problem} == {}
    assert broken_rules(template, defaults) == []


@pytest.mark.parametrize(
    "given",
    [
        {"ScheduleExpression": "rate(1 day)", "ScheduleObjectKey": "schedules/nightly-etl.zip"},
        {
            "ScheduleExpression": "cron(0 3 * * ? *)",
            "ScheduleTimezone": "America/Argentina/Buenos_Aires",
            "ScheduleObjectKey": "schedules/my report (v2) é.tar.gz",
        },
        {"ScheduleExpression": "at(2027-01-01T03:00:00)", "ScheduleObjectKey": "incoming/once.zip"},
    ],
)
def test_a_whole_schedule_passes_the_templates_checks(given: dict[str, str]) -> None:
    # GIVEN template.yaml and a schedule given whole: an expression, a key (and a time zone)
    template = load_template(DEFAULT_TEMPLATE)
    effective = {**parameter_defaults(template), **given}

    # THEN every value fits its declaration and no rule is broken
    problems = {name: parameter_problem(name, value, template["Parameters"][name]) for name, value in given.items()}
    assert {name: problem for name, problem in problems.items() if problem} == {}
    assert broken_rules(template, effective) == []


def test_demo_refuses_max_workers_0_which_local_up_accepts_as_enqueue_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN MaxWorkers=0, which the template allows (a pause: uploads queue up, no worker starts)
    assert parameter_problem("MaxWorkers", "0", load_template(DEFAULT_TEMPLATE)["Parameters"]["MaxWorkers"]) is None

    # WHEN lew demo, which waits for results, is given it
    code = cli.main(["demo", "--processor", "inventory", "--param", "MaxWorkers=0"])

    # THEN it stops at once, before any stack starts, saying why in one line
    assert code == 1
    assert capsys.readouterr().err == (
        "lew: error: --param MaxWorkers=0 starts no worker, so the demo could never finish; use `lew local up` to "
        "try enqueue-only, or give at least 1\n"
    )
