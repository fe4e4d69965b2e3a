"""Job state-change events: one EventBridge event per transition of a job (schema in docs/ARCHITECTURE.md).

`job_event` builds the `detail` of one event (the shape `docs/job-event.schema.json` fixes); `EventPublisher` sends
events from a background thread, so that a slow or failing EventBridge never fails or delays a job: a failure is
logged with an `EventsNotPublished` metric and dropped. `JobEvents` is what the job code calls at each transition.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from worker.log import get_logger

if TYPE_CHECKING:
    from worker.messages import Job
    from worker.parameters import Value

SOURCE = "lew"
DETAIL_TYPE = "lew Job State Change"
SCHEMA_VERSION = 1
QUEUED, STARTED, PROGRESS = "queued", "started", "progress"
SUCCEEDED, FAILED, RETRYING = "succeeded", "failed", "retrying"
DEAD_LETTERED, CANCELLED, SKIPPED = "dead-lettered", "cancelled", "skipped"
STATUSES = (QUEUED, STARTED, PROGRESS, SUCCEEDED, FAILED, RETRYING, DEAD_LETTERED, CANCELLED, SKIPPED)
# PutEvents takes at most 10 entries of at most 256 KiB each; an error message is cut well below that.
PUT_EVENTS_BATCH = 10
MAX_MESSAGE_CHARS = 2048
# Events wait here while EventBridge is slow; beyond this many the newest are dropped (and counted), never blocking.
MAX_PENDING = 1000
# How long the worker waits, at exit, for the events still pending (a stopping task has StopGraceSeconds at most).
CLOSE_TIMEOUT_SECONDS = 3.0
NOT_PUBLISHED_METRIC = "EventsNotPublished"

PutEventsEntry = dict[str, Any]


class PutEventsClient(Protocol):
    """The one call of an EventBridge client the publisher makes (boto3's `events` client)."""

    def put_events(self, *, Entries: list[PutEventsEntry]) -> Any:  # noqa: N803 - boto3's parameter name
        """Send up to 10 entries; the answer lists a result per entry."""
        ...


def job_event(
    status: str,
    job: Job,
    *,
    attempt: int | None = None,
    task_arn: str | None = None,
    message_id: str | None = None,
    manifest_key: str | None = None,
    outputs: int | None = None,
    parameters: Mapping[str, Value] | None = None,
    error: BaseException | Mapping[str, Any] | None = None,
    durations: Mapping[str, float] | None = None,
    progress: Mapping[str, Any] | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    """The `detail` of one job state-change event: every field always present, None where it does not apply.

    `durations` are seconds per phase (download, unpack, process, upload, total); `error` is an exception or a
    manifest's error record ({"type", "message", "permanent"}); `parameters` are the job's validated parameters by
    name, typed (None where the worker has not validated them). Raises ValueError for an unknown status.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown job status {status!r}: one of {', '.join(STATUSES)}")
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "job": {
            "bucket": job.bucket,
            "key": job.key,
            "version_id": job.version_id,
            "etag": job.etag,
            "size": job.size,
            "run": job.run.to_dict() if job.run is not None else None,
        },
        "attempt": attempt,
        "task_arn": task_arn,
        "message_id": message_id,
        "manifest_key": manifest_key,
        "outputs": outputs,
        "parameters": dict(parameters) if parameters is not None else None,
        "error": _error(error),
        "durations": {phase: round(seconds, 3) for phase, seconds in (durations or {}).items()},
        "progress": dict(progress) if progress is not None else None,
        "time": _iso(time or datetime.now(UTC)),
    }


def put_events_entry(detail: Mapping[str, Any], bus_name: str) -> PutEventsEntry:
    """The PutEvents entry of an event: source `lew`, detail-type `lew Job State Change`, the object as resource."""
    job = detail["job"]
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail, ensure_ascii=False),
        "Resources": [f"arn:aws:s3:::{job['bucket']}/{job['key']}"],
        "EventBusName": bus_name,
    }


class EventPublisher:
    """Send events to one bus from a daemon thread; `publish` never blocks and never raises.

    A PutEvents call that fails, or entries that EventBridge refuses, are logged and counted in the
    `EventsNotPublished` metric (EMF, through the logs), then dropped: an event is information, never a reason to
    hold up or retry a job. The client should have short timeouts and few retries (`events_client_config`).
    """

    def __init__(self, client: PutEventsClient, bus_name: str, *, max_pending: int = MAX_PENDING) -> None:
        self.client = client
        self.bus_name = bus_name
        self._pending: queue.Queue[PutEventsEntry | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0

    def publish(self, detail: Mapping[str, Any]) -> None:
        """Queue one event for sending (dropped, logged and counted when too many are already waiting)."""
        try:
            entry = put_events_entry(detail, self.bus_name)
            self._ensure_thread()
            self._pending.put_nowait(entry)
        except queue.Full:
            self._not_published(1, "too many events waiting for EventBridge")
        except Exception as error:  # noqa: BLE001 - an event must never fail its job
            self._not_published(1, f"{type(error).__name__}: {error}")

    def flush(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> bool:
        """Wait until every queued event was sent or dropped; False when `timeout` (s) ran out first."""
        done = threading.Event()

        def wait_for_queue() -> None:
            self._pending.join()
            done.set()

        threading.Thread(target=wait_for_queue, name="events-flush", daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Send what is pending (for at most `timeout` s), then stop the thread."""
        if self._thread is None:
            return
        if not self.flush(timeout):
            get_logger().warning("events still pending at exit were not sent", extra={"pending": self._pending.qsize()})
        try:
            self._pending.put_nowait(None)
        except queue.Full:
            return  # the daemon thread dies with the process
        self._thread.join(timeout=1.0)
        self._thread = None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="events", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                self._pending.task_done()
                return
            batch = [first]
            while len(batch) < PUT_EVENTS_BATCH:
                try:
                    entry = self._pending.get_nowait()
                except queue.Empty:
                    break
                if entry is None:
                    self._pending.put_nowait(None)  # stop after this batch
                    self._pending.task_done()
                    break
                batch.append(entry)
            try:
                self._send(batch)
            finally:
                for _ in batch:
                    self._pending.task_done()

    def _send(self, batch: list[PutEventsEntry]) -> None:
        try:
            response = self.client.put_events(Entries=batch)
        except (BotoCoreError, ClientError) as error:
            self._not_published(len(batch), str(error))
            return
        except Exception as error:  # noqa: BLE001 - whatever happens here, the job goes on
            self._not_published(len(batch), f"{type(error).__name__}: {error}")
            return
        failed = [entry for entry in response.get("Entries", []) if entry.get("ErrorCode")]
        self.sent += len(batch) - len(failed)
        if failed:
            reasons = sorted({f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage', '')}" for entry in failed})
            self._not_published(len(failed), "; ".join(reasons))

    def _not_published(self, count: int, reason: str) -> None:
        self.dropped += count
        get_logger().warning(
            "job events not published (the job goes on)", extra={"events": count, "bus": self.bus_name, "error": reason}
        )
        try:
            with single_metric(name=NOT_PUBLISHED_METRIC, unit=MetricUnit.Count, value=count) as metric:
                metric.add_dimension(name="service", value="lew-worker")
        except Exception:  # noqa: BLE001, S110 - a metric must not fail anything either; the warning above stays
            pass


@dataclass
class JobEvents:
    """The events of the jobs of one worker: what job code calls at each transition (no-ops without a publisher).

    `task_arn` is this worker's ECS task (None outside ECS). Every method returns at once (see EventPublisher).
    """

    publisher: EventPublisher | None = None
    task_arn: str | None = None
    published: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the last few, for tests and logs
    keep: int = 0  # how many to keep in `published` (0 in production)

    def emit(self, status: str, job: Job, **fields: Any) -> dict[str, Any] | None:
        """Build and publish one event (see `job_event` for the fields); its detail, or None if it could not be built.

        Never raises: an event that cannot be built is a bug to log, not a reason to fail the job.
        """
        try:
            detail = job_event(status, job, task_arn=self.task_arn, **fields)
        except Exception:  # noqa: BLE001 - the job goes on without its event
            get_logger().exception("could not build a job event (the job goes on)", extra={"status": status})
            return None
        if self.keep:
            self.published.append(detail)
            del self.published[: -self.keep]
        if self.publisher is not None:
            self.publisher.publish(detail)
        return detail

    def close(self) -> None:
        """Send what is pending before the worker exits (bounded by CLOSE_TIMEOUT_SECONDS)."""
        if self.publisher is not None:
            self.publisher.close()


def _error(error: BaseException | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        from worker.errors import is_permanent  # noqa: PLC0415 - errors imports archive: keep this module light

        record: dict[str, Any] = {"type": type(error).__name__, "message": str(error), "permanent": is_permanent(error)}
    else:
        record = {
            "type": str(error.get("type", "Error")),
            "message": str(error.get("message", "")),
            "permanent": bool(error.get("permanent", True)),
        }
    record["message"] = record["message"][:MAX_MESSAGE_CHARS]
    return record


def _iso(moment: datetime) -> str:
    # Milliseconds: several changes of one job often fall within a second, and consumers order by this field.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
