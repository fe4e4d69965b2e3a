"""The local stack passes ProcessCommand to its workers as the template does: only when it is set."""

from __future__ import annotations

from lew.local.resources import worker_env
from lew.local.settings import build_settings


def test_local_worker_env_has_process_command_only_when_set() -> None:
    # GIVEN the template's default (empty) ProcessCommand, and a set one
    default = build_settings(processor="inventory")
    command = "/usr/bin/python3 /srv/etl.py {input_dir} {output_dir}"
    chosen = build_settings(processor="command", parameters={"ProcessCommand": command})
    # WHEN the workers' environment is made
    # THEN an empty one sets nothing (a PROCESS_COMMAND the worker inherits is kept), a set one is passed on
    assert "PROCESS_COMMAND" not in worker_env(default, queue_url="q", dlq_url="d")
    assert worker_env(chosen, queue_url="q", dlq_url="d")["PROCESS_COMMAND"] == command


def test_local_worker_env_has_process_parameters_only_when_set() -> None:
    # GIVEN the template's default (empty) ProcessParameters, and a set one
    default = build_settings(processor="inventory", environ={})
    declared = "threshold:int:0..100"
    chosen = build_settings(
        processor="command", parameters={"ProcessCommand": "true", "ProcessParameters": declared}, environ={}
    )
    # WHEN the workers' environment is made
    # THEN an empty one sets nothing (as the template's HasProcessParameters: a PROCESS_PARAMETERS the worker
    # inherits is kept), a set one is passed on
    assert "PROCESS_PARAMETERS" not in worker_env(default, queue_url="q", dlq_url="d")
    assert worker_env(chosen, queue_url="q", dlq_url="d")["PROCESS_PARAMETERS"] == declared
