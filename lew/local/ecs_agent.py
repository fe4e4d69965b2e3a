"""A local ECS agent: every task that RunTask starts in the cluster becomes a `python -m worker` process.

The agent keeps its own record of each task's state instead of trusting moto's `lastStatus` (moto moves
it forward on every DescribeTasks). A task stopped from outside (StopTask) gets SIGTERM, as on Fargate.

Like ECS, it reports each task it stops: the stop code, start and stop times on the task, and a ``Task State Change``
event (``lew.local.task_state``). With ``start_failures`` (the chaos option ``--fail-task-starts``) it stops a share
of new tasks before their worker runs, as Fargate does when an image pull or a network interface fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lew.local.chaos import StartFailureInjector
from lew.local.output import LogSink
from lew.local.task_state import CONTAINER_EXITED, MotoTaskNotes, task_state_change_event

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

POLL_SECONDS = 0.5
# Worker exit codes (worker/faults.py) that every worker of this stack would meet alike: stop, don't wait.
FATAL_EXITS = {
    2: "a configuration error",  # an environment variable is missing or invalid
    3: "an AWS it cannot use",  # credentials, endpoint, queue: here, the local stack's own wiring
}


@dataclass
class WorkerProcess:
    """One task and the process that stands in for its container."""

    task_arn: str
    label: str
    process: subprocess.Popen[bytes] | None
    started_at: float = field(default_factory=time.monotonic)
    exit_code: int | None = None
    stopped_reason: str | None = None
    task_stopped: bool = False
    sigterm_sent: bool = False
    last_line: str = ""  # what the worker said last: on a configuration error, the one line naming the problem
    readers: list[threading.Thread] = field(default_factory=list)
    task: Mapping[str, Any] = field(default_factory=dict, repr=False)  # as DescribeTasks gave it, for the event
    launched_at: datetime | None = None  # when its worker started (None: it never ran)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class LocalEcsAgent:
    """Watches a cluster's RUNNING tasks in a thread and runs a worker process for each new one."""

    def __init__(
        self,
        *,
        ecs: ECSClient,
        cluster: str,
        sink: LogSink,
        command: Sequence[str],
        cwd: Path,
        inherited_environment: Mapping[str, str],
        platform_environment: Mapping[str, str],
        kill_grace_seconds: float = 10.0,
        poll_seconds: float = POLL_SECONDS,
        on_configuration_error: Callable[[str], None] = lambda line: None,
        start_failures: StartFailureInjector | None = None,
        task_notes: MotoTaskNotes | None = None,
        publish_event: Callable[[dict[str, Any]], None] | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        self._ecs = ecs
        self._cluster = cluster
        self._sink = sink
        self._command = list(command)
        self._cwd = cwd
        self._inherited = dict(inherited_environment)
        self._platform = dict(platform_environment)
        self._kill_grace_seconds = kill_grace_seconds
        self._poll_seconds = poll_seconds
        self._on_configuration_error = on_configuration_error
        self._start_failures = start_failures
        self._task_notes = task_notes
        self._publish_event = publish_event
        self._region, self._account_id = region, account_id
        self._task_environments: dict[str, dict[str, dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lew-ecs-agent", daemon=True)
        self.workers: dict[str, WorkerProcess] = {}
        self.peak_running = 0

    # -- observations, for progress displays and tests -------------------------------------------------------

    @property
    def running_count(self) -> int:
        with self._lock:
            return sum(1 for worker in self.workers.values() if worker.running)

    @property
    def tasks_started(self) -> int:
        with self._lock:
            return len(self.workers)

    @property
    def failed_starts(self) -> int:
        """Tasks stopped before their worker ran (``--fail-task-starts``)."""
        with self._lock:
            return sum(1 for worker in self.workers.values() if worker.launched_at is None)

    def exit_codes(self) -> dict[str, int | None]:
        with self._lock:
            return {worker.label: worker.exit_code for worker in self.workers.values()}

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM every worker, wait for the grace period, SIGKILL what is left, and stop their tasks."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            if worker.running and worker.process is not None:
                self._log(f"{worker.label}: SIGTERM (stack stopping)")
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._kill_grace_seconds
        for worker in workers:
            if worker.process is None:
                continue
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log(f"{worker.label}: still running after {self._kill_grace_seconds:g} s; SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.process.pid, signal.SIGKILL)  # its own session: takes its children too
                worker.process.wait()
        for worker in workers:
            self._settle(worker, quiet_errors=True)
            for reader in worker.readers:
                reader.join(5)

    # -- the loop -----------------------------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        self._sink("ecs", line)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._reconcile()
            except Exception as error:  # noqa: BLE001  # one failed poll must not kill the agent
                if self._stopping.is_set():
                    return
                self._log(f"poll failed: {type(error).__name__}: {error}")
            self._stopping.wait(self._poll_seconds)

    def _reconcile(self) -> None:
        running_arns = self._running_task_arns()
        with self._lock:
            new_arns = [arn for arn in running_arns if arn not in self.workers]
            known = list(self.workers.values())
        if new_arns:
            for task in self._ecs.describe_tasks(cluster=self._cluster, tasks=new_arns)["tasks"]:
                if self._start_failures is not None and self._start_failures.should_fail():
                    self._fail_start(task)
                else:
                    self._launch(task)
        for worker in known:
            if worker.running and worker.task_arn not in running_arns and not worker.sigterm_sent:
                # Stopped through the API (scale-in, `aws ecs stop-task`): Fargate sends SIGTERM.
                worker.sigterm_sent = True
                self._log(f"{worker.label}: task stopped through the API; SIGTERM")
                if worker.process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.send_signal(signal.SIGTERM)
            if not worker.running:
                self._settle(worker)
        with self._lock:
            self.peak_running = max(self.peak_running, sum(1 for w in self.workers.values() if w.running))

    def _running_task_arns(self) -> set[str]:
        arns: set[str] = set()
        paginator = self._ecs.get_paginator("list_tasks")
        for page in paginator.paginate(cluster=self._cluster, desiredStatus="RUNNING"):
            arns.update(page["taskArns"])
        return arns

    def _fail_start(self, task: Any) -> None:
        """Stop the task before its worker runs, with the injected stop code and reason, and report it like ECS."""
        assert self._start_failures is not None  # noqa: S101  # only called when failures are injected
        failures = self._start_failures.failures
        task_arn = str(task["taskArn"])
        with self._lock:
            label = f"worker-{len(self.workers) + 1}"
            worker = WorkerProcess(task_arn=task_arn, label=label, process=None, task=task)
            self.workers[task_arn] = worker
        worker.stopped_reason = failures.reason
        self._ecs.stop_task(cluster=self._cluster, task=task_arn, reason=failures.reason)
        worker.task_stopped = True
        self._report_stop(worker, failures.stop_code)
        self._log(f"{label}: task {task_arn.rsplit('/', 1)[-1]} failed to start: {failures.stop_code}")

    def _report_stop(self, worker: WorkerProcess, stop_code: str) -> None:
        """What ECS records and announces about a stopped task: its stop code and times, and the state event."""
        now = datetime.now(UTC)
        if self._task_notes is not None:
            self._task_notes.stopped(worker.task_arn, stop_code, now)
        if self._publish_event is not None and worker.task:
            event = task_state_change_event(
                worker.task,
                stop_code=stop_code,
                reason=worker.stopped_reason or "",
                started_at=worker.launched_at,
                stopped_at=now,
                region=self._region,
                account_id=self._account_id,
            )
            try:
                self._publish_event(event)
            except Exception as error:  # noqa: BLE001  # the endpoint may already be gone while stopping
                self._log(f"{worker.label}: could not publish its Task State Change event: {error}")

    def _launch(self, task: Any) -> None:
        task_arn = str(task["taskArn"])
        with self._lock:
            label = f"worker-{len(self.workers) + 1}"
        environment = {**self._inherited, **self._platform, **self._container_environment(task)}
        try:
            process = subprocess.Popen(
                self._command,
                cwd=self._cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the stack, which then stops workers in order
            )
        except OSError as error:
            self._log(f"{label}: cannot start {self._command[0]}: {error}")
            worker = WorkerProcess(task_arn=task_arn, label=label, process=None, exit_code=127)
            with self._lock:
                self.workers[task_arn] = worker
            self._settle(worker)
            return
        worker = WorkerProcess(
            task_arn=task_arn, label=label, process=process, task=task, launched_at=datetime.now(UTC)
        )
        if self._task_notes is not None:
            self._task_notes.started(task_arn, worker.launched_at or datetime.now(UTC))
        reader = threading.Thread(target=self._pump, args=(worker, process.stdout), name=f"lew-{label}", daemon=True)
        worker.readers.append(reader)
        with self._lock:
            self.workers[task_arn] = worker
        reader.start()
        self._log(f"{label}: started for task {task_arn.rsplit('/', 1)[-1]} (pid {process.pid})")

    def _container_environment(self, task: Any) -> dict[str, str]:
        """The task definition's container environment, overlaid with RunTask's container overrides."""
        definition_arn = str(task["taskDefinitionArn"])
        if definition_arn not in self._task_environments:
            definition = self._ecs.describe_task_definition(taskDefinition=definition_arn)["taskDefinition"]
            self._task_environments[definition_arn] = {
                container["name"]: {item["name"]: item["value"] for item in container.get("environment", [])}
                for container in definition["containerDefinitions"]
            }
        containers = self._task_environments[definition_arn]
        container_name = next(iter(containers))
        environment = dict(containers[container_name])
        for override in (task.get("overrides") or {}).get("containerOverrides", []):
            if override.get("name") == container_name:
                environment.update({item["name"]: item["value"] for item in override.get("environment", [])})
        return environment

    def _pump(self, worker: WorkerProcess, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if line.strip():
                    worker.last_line = line
                self._sink(worker.label, line)

    def _settle(self, worker: WorkerProcess, *, quiet_errors: bool = False) -> None:
        """Record the exit code and stop the task, once."""
        if worker.task_stopped or worker.running:
            return
        if worker.process is not None:
            worker.exit_code = worker.process.returncode
        worker.stopped_reason = f"exit {worker.exit_code}"
        try:
            self._ecs.stop_task(cluster=self._cluster, task=worker.task_arn, reason=worker.stopped_reason)
        except Exception as error:  # noqa: BLE001  # the endpoint may already be gone while stopping
            if not quiet_errors:
                self._log(f"{worker.label}: StopTask failed: {type(error).__name__}: {error}")
        else:
            self._report_stop(worker, CONTAINER_EXITED)
        worker.task_stopped = True
        seconds = time.monotonic() - worker.started_at
        self._log(f"{worker.label}: exited with code {worker.exit_code} after {seconds:.1f} s; task stopped")
        fatal = FATAL_EXITS.get(worker.exit_code) if worker.exit_code is not None else None
        if fatal is not None and not self._stopping.is_set():
            for reader in worker.readers:
                reader.join(5)  # its last words are still in the pipe
            said = said_last(worker.last_line) or "(it printed nothing)"
            self._on_configuration_error(f"{worker.label} stopped on {fatal}: {said}")


def said_last(line: str) -> str:
    """A worker's last line, as a reader wants it: a structured (JSON) log line's message and error, else the line."""
    try:
        record = json.loads(line)
    except ValueError:
        return line.strip()
    if not isinstance(record, dict) or "message" not in record:
        return line.strip()
    details = [str(record[key]) for key in ("error", "hint") if record.get(key)]
    return "; ".join([str(record["message"]), *details])
