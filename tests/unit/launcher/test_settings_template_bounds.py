"""The launcher's settings accept exactly what template.yaml lets a stack pass them (no value the template allows
is refused at run time, and the documented meaning of the lowest one holds)."""

from __future__ import annotations

import pytest

from lew.template import DEFAULT_TEMPLATE, load_template
from lew_launcher.scaling import desired_workers
from lew_launcher.settings import ConfigurationError, Settings

REQUIRED = {
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/lew-work",
    "CLUSTER": "lew",
    "TASK_DEFINITION": "lew-worker",
    "SUBNETS": "subnet-1",
}
# Template parameter -> the launcher variable it becomes (template.yaml's LauncherFunction environment).
BOUNDED = {"MaxWorkers": "MAX_WORKERS", "MessagesPerWorker": "MESSAGES_PER_WORKER"}


@pytest.mark.parametrize(("parameter", "variable"), BOUNDED.items())
def test_launcher_settings_take_the_templates_min_value_and_refuse_one_below(parameter: str, variable: str) -> None:
    # GIVEN the lowest value template.yaml allows for the parameter
    lowest = int(load_template(DEFAULT_TEMPLATE)["Parameters"][parameter]["MinValue"])

    # THEN the launcher accepts it, and refuses one less, naming the variable
    assert getattr(Settings.from_env(REQUIRED | {variable: str(lowest)}), variable.lower()) == lowest
    with pytest.raises(ConfigurationError, match=f"{variable} must be at least {lowest}, got {lowest - 1}"):
        Settings.from_env(REQUIRED | {variable: str(lowest - 1)})


def test_max_workers_0_enqueues_only_as_the_readme_says() -> None:
    # GIVEN the template's lowest MaxWorkers, and the README's word for it
    assert load_template(DEFAULT_TEMPLATE)["Parameters"]["MaxWorkers"]["MinValue"] == 0
    readme = (DEFAULT_TEMPLATE.parent / "README.md").read_text(encoding="utf-8")
    assert "| `MAX_WORKERS` | `4` | most workers to run at once, ≥ 0 (0 enqueues only" in readme

    # THEN with 0 no backlog starts a worker
    assert desired_workers(backlog=1000, max_workers=0, messages_per_worker=5) == 0
