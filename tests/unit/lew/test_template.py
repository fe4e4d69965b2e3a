"""The template reader: CloudFormation short tags, parameter defaults, rates and environment blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lew import template as cfn
from lew.errors import LewError

TEMPLATE = """
Parameters:
  InputPrefix: {Type: String, Default: incoming/}
  MaxWorkers:
    Type: Number
    Default: 4
  Subnets:
    Type: CommaDelimitedList
    Default: [subnet-a, subnet-b]
  NoDefault: {Type: String}
Globals:
  Function:
    Environment:
      Variables:
        POWERTOOLS_SERVICE_NAME: lew-launcher
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-work"
      Arn: !GetAtt Queue.Arn
      Tags: !If [Cond, !Ref MaxWorkers, !Ref AWS::NoValue]
  Launcher:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          QUEUE_URL: !Ref Queue
          MAX_WORKERS: !Ref MaxWorkers
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - Name: worker
          Environment:
            - { Name: INPUT_PREFIX, Value: !Ref InputPrefix }
            - { Name: REGION, Value: !Sub "${AWS::Region}" }
            - { Name: QUEUE_URL, Value: !Ref Queue }
"""


@pytest.fixture
def template_file(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


def test_load_template_turns_short_tags_into_long_form(template_file: Path) -> None:
    # WHEN a template full of !Ref, !Sub, !GetAtt and !If is loaded
    loaded = cfn.load_template(template_file)

    # THEN each tag is its long-form mapping
    queue = loaded["Resources"]["Queue"]["Properties"]
    assert queue["QueueName"] == {"Fn::Sub": "${AWS::StackName}-work"}
    assert queue["Arn"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert queue["Tags"] == {"Fn::If": ["Cond", {"Ref": "MaxWorkers"}, {"Ref": "AWS::NoValue"}]}


def test_parameter_defaults_are_strings_and_skip_parameters_without_one(template_file: Path) -> None:
    defaults = cfn.parameter_defaults(cfn.load_template(template_file))

    assert defaults == {"InputPrefix": "incoming/", "MaxWorkers": "4", "Subnets": "subnet-a,subnet-b"}


def test_parameter_defaults_of_the_project_template_cover_the_contract() -> None:
    # The real template.yaml: every parameter docs/ARCHITECTURE.md names has a default.
    defaults = cfn.parameter_defaults(cfn.load_template())

    for name in (
        "InputPrefix",
        "ResultPrefix",
        "Suffixes",
        "MaxWorkers",
        "MessagesPerWorker",
        "Processor",
        "VisibilityTimeout",
        "MaxReceiveCount",
        "IdlePolls",
        "WaitTimeSeconds",
        "ReconcileSchedule",
    ):
        assert name in defaults, name


def test_load_template_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LewError, match="template not found"):
        cfn.load_template(tmp_path / "nope.yaml")


def test_load_template_rejects_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("Parameters: [unclosed", encoding="utf-8")

    with pytest.raises(LewError, match="not valid YAML"):
        cfn.load_template(path)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_seconds_reads_rate_expressions(expression: str, seconds: int) -> None:
    assert cfn.rate_seconds(expression) == seconds


def test_rate_seconds_rejects_cron_expressions() -> None:
    with pytest.raises(LewError, match="not a rate"):
        cfn.rate_seconds("cron(0 * * * ? *)")


def test_environment_blocks_are_found_for_the_launcher_and_the_worker(template_file: Path) -> None:
    loaded = cfn.load_template(template_file)

    assert cfn.function_environment(loaded) == {
        "POWERTOOLS_SERVICE_NAME": "lew-launcher",
        "QUEUE_URL": {"Ref": "Queue"},
        "MAX_WORKERS": {"Ref": "MaxWorkers"},
    }
    assert cfn.container_environment(loaded, "worker")["INPUT_PREFIX"] == {"Ref": "InputPrefix"}
    assert cfn.container_environment(loaded, "other") == {}


def test_resolve_value_resolves_parameters_and_pseudo_parameters_but_not_resources() -> None:
    parameters = {"InputPrefix": "incoming/"}
    pseudo = {"AWS::Region": "eu-west-1"}

    assert cfn.resolve_value({"Ref": "InputPrefix"}, parameters, pseudo) == "incoming/"
    assert cfn.resolve_value({"Fn::Sub": "${AWS::Region}-x"}, parameters, pseudo) == "eu-west-1-x"
    assert cfn.resolve_value({"Fn::Join": [",", ["a", {"Ref": "InputPrefix"}]]}, parameters, pseudo) == "a,incoming/"
    assert cfn.resolve_value(7, parameters, pseudo) == "7"
    assert cfn.resolve_value({"Ref": "Queue"}, parameters, pseudo) is None
    assert cfn.resolve_value({"Fn::GetAtt": ["Queue", "Arn"]}, parameters, pseudo) is None
