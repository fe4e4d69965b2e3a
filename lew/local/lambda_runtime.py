"""A local Lambda runtime for the launcher: S3 and EventBridge events from an SQS inbox, plus the reconcile schedule.

It invokes the handler the way Lambda's asynchronous invocation does: one event at a time (like reserved
concurrency 1), up to two retries with a delay when the handler raises, then an on-failure record (the
same shape Lambda's on-failure destination receives) in a failure queue.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lew.local.output import LogSink
from lew.template import REPO_ROOT

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

Handler = Callable[[dict[str, Any], Any], Any]
SCHEDULED_EVENT_SAMPLE = REPO_ROOT / "events" / "scheduled-reconcile.json"
INBOX_WAIT_SECONDS = 1  # short long-polls, so that stop() and the reconcile timer are never kept waiting
FUNCTION_TIMEOUT_SECONDS = 60


@dataclass
class LocalLambdaContext:
    """The attributes of a Lambda context that the launcher and Powertools read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/lew-local-launcher"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + FUNCTION_TIMEOUT_SECONDS)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class JobSchedule:
    """A scheduled job the runtime fires on its own clock: every `period_seconds`, the event for that time."""

    period_seconds: float
    event: Callable[[datetime], dict[str, Any]]


@dataclass
class RuntimeStats:
    """What the runtime did, for `lew status`-like summaries and for tests."""

    invocations: int = 0
    errors: int = 0
    failed_events: int = 0
    results: list[Any] = field(default_factory=list)


def load_launcher_handler() -> Handler:
    """Import the real launcher, `lew_launcher.app.handler`, as a cold start: no clients or memory of an earlier stack.

    Imported late on purpose: its Powertools logger binds sys.stdout on import, after the stack routes it.
    """
    from lew_launcher import app, observability  # noqa: PLC0415

    # A second stack in the same process has a new endpoint: forget the warm environment's cached clients and
    # the tasks it remembers starting, exactly what a new Lambda execution environment would not have.
    cached_clients = getattr(app, "aws_clients", None)
    if cached_clients is not None and hasattr(cached_clients, "cache_clear"):
        cached_clients.cache_clear()
    launch_memory = getattr(app, "LAUNCH_MEMORY", None)
    if launch_memory is not None and hasattr(launch_memory, "clear"):
        launch_memory.clear()
    observability.tracer.reset()  # a new environment decides on tracing again, from its own variables
    handler: Handler = app.handler
    return handler


def scheduled_event(region: str, account_id: str, rule_name: str) -> dict[str, Any]:
    """The EventBridge schedule's event: the committed sample when there is one, with a fresh id and time."""
    event: dict[str, Any] = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    if SCHEDULED_EVENT_SAMPLE.is_file():
        event = json.loads(SCHEDULED_EVENT_SAMPLE.read_text(encoding="utf-8"))
    event.update(
        id=str(uuid.uuid4()),
        time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        region=region,
        account=account_id,
        resources=[f"arn:aws:events:{region}:{account_id}:rule/{rule_name}"],
    )
    return event


class LocalLambdaRuntime:
    """Polls the inbox queue and the reconcile timer in one thread, invoking the handler for each event."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        inbox_url: str,
        failure_url: str,
        handler: Handler,
        sink: LogSink,
        function_name: str,
        region: str,
        account_id: str,
        reconcile_seconds: float,
        retry_delays: tuple[float, ...],
        on_thread_start: Callable[[], None] = lambda: None,
        on_configuration_error: Callable[[str], None] = lambda line: None,
        job_schedule: JobSchedule | None = None,
    ) -> None:
        self._sqs = sqs
        self._inbox_url = inbox_url
        self._failure_url = failure_url
        self._handler = handler
        self._sink = sink
        self._function_name = function_name
        self._region = region
        self._account_id = account_id
        self._reconcile_seconds = reconcile_seconds
        self._retry_delays = retry_delays
        self._on_thread_start = on_thread_start
        self._on_configuration_error = on_configuration_error
        self._job_schedule = job_schedule
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lew-lambda-runtime", daemon=True)
        self.stats = RuntimeStats()
        self._invocation_lines: list[str] = []

    def capture_line(self, line: str) -> None:
        """A line the launcher printed (its JSON logs and metrics), kept until its invocation ends."""
        self._invocation_lines.append(line)

    def _emit_invocation_lines(self, *, keep: bool) -> None:
        lines, self._invocation_lines = self._invocation_lines, []
        if keep:
            for line in lines:
                self._sink("launcher", line)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; an invocation in progress finishes first (Lambda would not cut it short either)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _log(self, line: str) -> None:
        self._sink("lambda", line)

    def _run(self) -> None:
        self._on_thread_start()
        next_reconcile = time.monotonic() + self._reconcile_seconds
        schedule = self._job_schedule
        next_run = time.monotonic() + schedule.period_seconds if schedule is not None else None
        while not self._stopping.is_set():
            try:
                if schedule is not None and next_run is not None and time.monotonic() >= next_run:
                    next_run += schedule.period_seconds
                    self.invoke_async(schedule.event(datetime.now(UTC)), source="lew.schedule")
                if time.monotonic() >= next_reconcile:
                    next_reconcile = time.monotonic() + self._reconcile_seconds
                    rule = f"{self._function_name}-reconcile"
                    self.invoke_async(scheduled_event(self._region, self._account_id, rule), source="schedule")
                self._poll_inbox()
            except Exception as error:  # noqa: BLE001  # the runtime must outlive one bad poll, like Lambda's poller
                if self._stopping.is_set():
                    return
                self._log(f"inbox poll failed: {type(error).__name__}: {error}")
                self._stopping.wait(1.0)

    def _poll_inbox(self) -> None:
        received = self._sqs.receive_message(
            QueueUrl=self._inbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=INBOX_WAIT_SECONDS
        )
        for message in received.get("Messages", []):
            if self._stopping.is_set():
                return  # left in the inbox: the event is not lost, it is simply not invoked now
            event = parse_event(message["Body"])
            if isinstance(event, ValueError):
                self._log(f"inbox message {message['MessageId']} is not an event ({event}); sent to the failure queue")
                self._record_failure({"body": message["Body"]}, event, attempts=0)
            elif not self.invoke_async(event, source=_event_source(event)):
                continue  # stopping during retries: leave the message for the next start
            self._sqs.delete_message(QueueUrl=self._inbox_url, ReceiptHandle=message["ReceiptHandle"])

    def invoke_async(self, event: dict[str, Any], *, source: str) -> bool:
        """Invoke with Lambda's async retries; False only if stopped before the event was settled."""
        attempts = 1 + len(self._retry_delays)
        for attempt in range(1, attempts + 1):
            context = LocalLambdaContext(
                function_name=self._function_name,
                invoked_function_arn=f"arn:aws:lambda:{self._region}:{self._account_id}:function:{self._function_name}",
            )
            self.stats.invocations += 1
            try:
                result = self._handler(event, context)
            except Exception as error:  # noqa: BLE001  # any handler error is an invocation error, as in Lambda
                self._emit_invocation_lines(keep=True)
                self.stats.errors += 1
                self._log(f"{source} event failed (attempt {attempt}/{attempts}): {type(error).__name__}: {error}")
                if is_configuration_error(error):  # every event will fail alike: say so now, not after a timeout
                    self._on_configuration_error(f"the launcher failed on its configuration: {error}")
                if attempt == attempts:
                    self._record_failure(event, error, attempts=attempts)
                    return True
                if self._stopping.wait(self._retry_delays[attempt - 1]):
                    return False
            else:
                self.stats.results.append(result)
                # A reconcile that found nothing to do says so every few seconds: keep `lew local up` readable.
                worth_showing = source != "schedule" or _started_tasks(result)
                self._emit_invocation_lines(keep=worth_showing)
                if worth_showing:
                    self._log(f"{source} event handled: {json.dumps(result, default=str)}")
                return True
        return True

    def _record_failure(self, event: dict[str, Any], error: BaseException, *, attempts: int) -> None:
        """Send an on-failure destination record, so that no event vanishes without trace."""
        self.stats.failed_events += 1
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "functionArn": f"arn:aws:lambda:{self._region}:{self._account_id}:function:{self._function_name}",
                "condition": "RetriesExhausted" if attempts else "EventParseError",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responsePayload": {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error)[-3:],
            },
        }
        self._sqs.send_message(QueueUrl=self._failure_url, MessageBody=json.dumps(record, default=str))


def is_configuration_error(error: BaseException) -> bool:
    """Whether the launcher refused its environment (its `ConfigurationError`, however its modules are laid out).

    Matched by class name along the MRO rather than imported: Lambda loads the launcher as a top-level module,
    and the local stack must not depend on where inside it the class lives.
    """
    return any(kind.__name__ == "ConfigurationError" for kind in type(error).__mro__)


def parse_event(body: str) -> dict[str, Any] | ValueError:
    """An inbox message's event, or the reason it is not one."""
    try:
        event = json.loads(body)
    except ValueError as error:
        return ValueError(f"not JSON: {error}")
    if not isinstance(event, dict):
        return ValueError(f"expected a JSON object, got {type(event).__name__}")
    return event


def _event_source(event: dict[str, Any]) -> str:
    """A short name of what sent an inbox event, for log lines: s3 (notifications) or the EventBridge source."""
    source = event.get("source")
    return str(source).removeprefix("aws.") if isinstance(source, str) else "s3"


def _started_tasks(result: Any) -> bool:
    """Whether a reconcile result is worth a log line (quiet schedules keep `lew local up` readable)."""
    return isinstance(result, dict) and bool(result.get("tasks_started"))
