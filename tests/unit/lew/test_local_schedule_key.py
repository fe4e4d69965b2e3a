"""`lew local up` refuses a ScheduleObjectKey the launcher would refuse at every tick, before anything starts."""

from __future__ import annotations

import pytest

from lew.errors import LewError
from lew.local.settings import build_settings

SCHEDULE = {"ScheduleExpression": "rate(1 minute)"}


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("schedules/etl.txt", "the stack only processes .zip, .tar, .tar.gz, .tgz files"),
        ("results/etl.zip", "is under the result prefix results/"),
    ],
)
def test_build_settings_refuses_a_schedule_key_the_launcher_would_refuse(key: str, words: str) -> None:
    with pytest.raises(LewError, match=rf"^--param ScheduleObjectKey: .*{words}"):
        build_settings(processor="inventory", parameters={**SCHEDULE, "ScheduleObjectKey": key})


def test_build_settings_takes_a_schedule_key_outside_the_input_prefix() -> None:
    settings = build_settings(processor="inventory", parameters={**SCHEDULE, "ScheduleObjectKey": "schedules/etl.tgz"})
    assert settings.parameter("ScheduleObjectKey") == "schedules/etl.tgz"
