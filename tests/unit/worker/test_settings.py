"""Settings.from_env: defaults, the legacy queue variable, and errors that name the variable."""

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
        "AWS_REGION": "us-east-1",
        "INPUT_PREFIX": "in/",
        "RESULT_PREFIX": "out/",
        "PROCESSOR": "command",
        "PROCESS_COMMAND": "convert a b",
        "OUTPUT_DIR": "rendered",
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
        region="us-east-1",
        input_prefix="in/",
        result_prefix="out/",
        processor="command",
        process_command="convert a b",
        output_dir="rendered",
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
        ("STOP_GRACE_SECONDS", "120"),
        ("STOP_GRACE_SECONDS", "-1"),
        ("MAX_ARCHIVE_BYTES", "5GB"),
        ("MAX_UNPACKED_BYTES", "0"),
        ("MAX_MEMBERS", "-3"),
        ("RESULT_PREFIX", "results"),
        ("RESULT_PREFIX", "incoming/results/"),
        ("INPUT_PREFIX", "incoming"),
        ("OUTPUT_DIR", "/abs"),
        ("OUTPUT_DIR", "../up"),
        ("PROCESSOR", "command"),
    ],
)
def test_settings_name_the_bad_variable(variable: str, value: str) -> None:
    environ = {"QUEUE_URL": QUEUE, "AWS_REGION": "us-east-1", variable: value}

    with pytest.raises(ConfigurationError, match=variable if variable != "PROCESSOR" else "PROCESS_COMMAND"):
        Settings.from_env(environ)


def test_settings_need_a_queue_url() -> None:
    with pytest.raises(ConfigurationError, match="QUEUE_URL"):
        Settings.from_env({"AWS_REGION": "us-east-1"})


def test_settings_need_a_region_when_the_url_has_none() -> None:
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        Settings.from_env({"QUEUE_URL": "http://localhost:5000/123456789012/lew-work"})
