"""Settings.from_env: defaults, the legacy queue variable, and one error that names every bad variable."""

from __future__ import annotations

import pytest

from worker.settings import GIB, ConfigurationError, Settings

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/lew-work"


def test_settings_defaults_match_the_documentation() -> None:
    settings = Settings.from_env({"QUEUE_URL": QUEUE, "AWS_REGION": "eu-west-1"})

    assert settings == Settings(queue_url=QUEUE, region="eu-west-1")
    assert (settings.input_prefix, settings.result_prefix, settings.processor) == ("incoming/", "results/", "inventory")
    assert (settings.wait_time_seconds, settings.idle_polls, settings.receive_batch_size) == (20, 2, 1)
    assert (settings.visibility_timeout, settings.job_timeout, settings.stop_grace_seconds) == (300, 3600, 100)
    assert (settings.max_archive_bytes, settings.max_unpacked_bytes, settings.max_members) == (
        5 * GIB,
        20 * GIB,
        10_000,
    )
    assert settings.dlq_url is None
    assert settings.heartbeat_interval == 100


def test_settings_accept_the_legacy_sqs_queue_url_and_read_the_region_from_it() -> None:
    settings = Settings.from_env({"SQS_QUEUE_URL": QUEUE})

    assert settings.queue_url == QUEUE
    assert settings.region == "eu-west-1"


def test_settings_read_every_variable() -> None:
    environ = {
        "QUEUE_URL": QUEUE,
        "AWS_REGION": "eu-west-1",
        "INPUT_PREFIX": "in/",
        "RESULT_PREFIX": "out/",
        "PROCESSOR": "command",
        "PROCESS_COMMAND": "convert a b",
        "OUTPUT_DIR": "rendered",
        "ALLOW_EMPTY_OUTPUT": "true",
        "WAIT_TIME_SECONDS": "5",
        "IDLE_POLLS": "3",
        "RECEIVE_BATCH_SIZE": "10",
        "VISIBILITY_TIMEOUT": "60",
        "JOB_TIMEOUT": "12.5",
        "STOP_GRACE_SECONDS": "30",
        "MAX_ARCHIVE_BYTES": "1000",
        "MAX_UNPACKED_BYTES": "2000",
        "MAX_MEMBERS": "7",
        "DLQ_URL": QUEUE + "-dlq",
    }

    settings = Settings.from_env(environ)

    assert settings == Settings(
        queue_url=QUEUE,
        region="eu-west-1",
        input_prefix="in/",
        result_prefix="out/",
        processor="command",
        process_command="convert a b",
        output_dir="rendered",
        allow_empty_output=True,
        wait_time_seconds=5,
        idle_polls=3,
        receive_batch_size=10,
        visibility_timeout=60,
        job_timeout=12.5,
        stop_grace_seconds=30,
        max_archive_bytes=1000,
        max_unpacked_bytes=2000,
        max_members=7,
        dlq_url=QUEUE + "-dlq",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WAIT_TIME_SECONDS", "21"),
        ("WAIT_TIME_SECONDS", "soon"),
        ("IDLE_POLLS", "0"),
        ("RECEIVE_BATCH_SIZE", "0"),
        ("RECEIVE_BATCH_SIZE", "11"),
        ("VISIBILITY_TIMEOUT", "2"),
        ("VISIBILITY_TIMEOUT", "1.5"),
        ("JOB_TIMEOUT", "0"),
        ("JOB_TIMEOUT", "nan"),
        ("STOP_GRACE_SECONDS", "111"),
        ("STOP_GRACE_SECONDS", "-1"),
        ("MAX_ARCHIVE_BYTES", "5GB"),
        ("MAX_UNPACKED_BYTES", "0"),
        ("MAX_MEMBERS", "-3"),
        ("RESULT_PREFIX", "results"),
        ("RESULT_PREFIX", "incoming/results/"),
        ("INPUT_PREFIX", "incoming"),
        ("OUTPUT_DIR", "/abs"),
        ("OUTPUT_DIR", "../up"),
        ("OUTPUT_DIR", "input"),
        ("ALLOW_EMPTY_OUTPUT", "maybe"),
        ("PROCESSOR", "command"),
        ("PROCESSOR", "bogus"),
        ("PROCESSOR", "my module:make"),
        ("QUEUE_URL", "lew-work"),
        ("DLQ_URL", "lew-dlq"),
        ("AWS_REGION", "us-east1"),
    ],
)
def test_settings_name_the_bad_variable(variable: str, value: str) -> None:
    environ = {"QUEUE_URL": QUEUE, "AWS_REGION": "eu-west-1", variable: value}

    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)

    # PROCESSOR=command is valid on its own: what is missing is its PROCESS_COMMAND
    named = "PROCESS_COMMAND" if (variable, value) == ("PROCESSOR", "command") else variable
    [problem] = raised.value.problems
    assert problem.startswith(f"{named} ")
    assert repr(value) in problem or named != variable


def test_settings_need_a_queue_url() -> None:
    with pytest.raises(ConfigurationError, match="QUEUE_URL"):
        Settings.from_env({"AWS_REGION": "us-east-1"})


def test_settings_need_a_region_when_the_url_has_none() -> None:
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        Settings.from_env({"QUEUE_URL": "http://localhost:5000/123456789012/lew-work"})


def test_settings_name_every_bad_variable_in_one_error() -> None:
    # GIVEN three bad variables at once (the README's promise: every one is named, not only the first)
    environ = {
        "QUEUE_URL": QUEUE,
        "WAIT_TIME_SECONDS": "99",
        "RECEIVE_BATCH_SIZE": "0",
        "VISIBILITY_TIMEOUT": "abc",
    }

    # WHEN the settings are read
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)

    # THEN one line names all three, with the rule each one breaks
    assert str(raised.value) == (
        "invalid worker configuration: WAIT_TIME_SECONDS must be between 0 and 20, got '99'; "
        "RECEIVE_BATCH_SIZE must be between 1 and 10, got '0'; VISIBILITY_TIMEOUT must be a whole number, got 'abc'"
    )
    assert len(raised.value.problems) == 3
    assert "\n" not in str(raised.value)


def test_settings_report_every_kind_of_problem_together() -> None:
    # GIVEN one bad value of every kind: text rules, numbers, cross-variable rules
    environ = {
        "QUEUE_URL": QUEUE,
        "DLQ_URL": QUEUE,
        "RESULT_PREFIX": "incoming/results/",
        "PROCESSOR": "command",
        "OUTPUT_DIR": "/abs",
        "JOB_TIMEOUT": "nan",
        "STOP_GRACE_SECONDS": "119",
        "MAX_MEMBERS": "many",
    }

    # WHEN the settings are read
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)

    # THEN every one of them is named, in one error
    named = [problem.split(" ", 1)[0] for problem in raised.value.problems]
    assert named == [
        "DLQ_URL",
        "RESULT_PREFIX",
        "PROCESS_COMMAND",
        "OUTPUT_DIR",
        "JOB_TIMEOUT",
        "STOP_GRACE_SECONDS",
        "MAX_MEMBERS",
    ]


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"QUEUE_URL": QUEUE, "AWS_REGION": "us-east-1"},
            "AWS_REGION=us-east-1 does not match QUEUE_URL's region eu-west-1: SQS would not find the queue",
        ),
        (
            {"QUEUE_URL": QUEUE, "DLQ_URL": QUEUE.replace("eu-west-1", "us-west-2") + "-dlq"},
            "DLQ_URL is in us-west-2 but QUEUE_URL in eu-west-1: use the stack's DLQ",
        ),
        (
            {"QUEUE_URL": QUEUE, "DLQ_URL": QUEUE + "/"},
            "DLQ_URL must not be QUEUE_URL: poison would return to the work queue forever",
        ),
        (
            {"QUEUE_URL": QUEUE, "INPUT_PREFIX": "", "RESULT_PREFIX": "results"},
            "RESULT_PREFIX must be a folder ending with '/', like 'results/', got 'results'",
        ),
        (
            {"QUEUE_URL": QUEUE, "RESULT_PREFIX": "incoming/out/"},
            "RESULT_PREFIX 'incoming/out/' lies inside INPUT_PREFIX 'incoming/': results would be processed again; "
            "use separate prefixes",
        ),
        (
            {"QUEUE_URL": QUEUE, "PROCESS_COMMAND": "convert a b"},
            "PROCESS_COMMAND is set but PROCESSOR=inventory ignores it: set PROCESSOR=command to run it",
        ),
        (
            {"QUEUE_URL": QUEUE, "PROCESSOR": "command", "PROCESS_COMMAND": "convert 'a"},
            'PROCESS_COMMAND cannot be split into arguments (No closing quotation), got "convert \'a"',
        ),
        (
            {"QUEUE_URL": QUEUE, "STOP_GRACE_SECONDS": "115"},
            "STOP_GRACE_SECONDS must be between 0 and 110 (ECS kills the task 120 s after SIGTERM, and the worker "
            "needs the rest to stop the processor and release its message), got '115'",
        ),
        (
            {"QUEUE_URL": "http://localhost:5000/123456789012/lew-work"},
            "AWS_REGION is required and is not set, and QUEUE_URL names no region",
        ),
        ({}, "QUEUE_URL is required and is not set (the work queue's URL; SQS_QUEUE_URL works too)"),
    ],
)
def test_settings_cross_variable_rules_say_what_to_set(environ: dict[str, str], problem: str) -> None:
    # GIVEN variables that are each valid but do not fit together (or a missing one)
    # WHEN the settings are read
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)

    # THEN the one problem is named exactly
    assert raised.value.problems == (problem,)
