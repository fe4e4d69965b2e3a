"""The job's own beat while it runs: carry its progress into the claim and events, and honour a cancel request.

1 s after the job starts, then every WATCH_SECONDS, the watch reads the latest progress (a local file: free), and
when it changed puts it into the claim (one conditional PUT, at most every PROGRESS_SECONDS) and publishes a
`progress` event; it also looks for a cancel marker (one GET). A cancel request, or the worker's own stop
(`abort`), sets `interrupt`: the processor's command polls that event and is killed as a tree within a fraction
of a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from worker.cancel import CancelRequest, pending_cancel
from worker.events import PROGRESS, JobEvents
from worker.log import get_logger
from worker.progress import Progress

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from worker.claims import Claim
    from worker.messages import Job
    from worker.parameters import Value

# How often the cancel marker is read and the progress looked at: a cancel takes effect within this.
WATCH_SECONDS = 5.0
# The first look comes sooner, so that a job of a few seconds shows its progress too.
FIRST_BEAT_SECONDS = 1.0
# Progress reaches the claim and the event bus at most this often (and only when it changed).
PROGRESS_SECONDS = 5.0
# How quickly the worker's own stop (SIGTERM) reaches the processor.
POLL_SECONDS = 0.2

ProgressReader = Callable[[], Progress | None]


class JobWatch:
    """A daemon thread for one running job; use `with watch.running():` around the job's work."""

    def __init__(
        self,
        *,
        s3: S3Client,
        job: Job,
        claim: Claim,
        cancel_key: str,
        events: JobEvents,
        abort: threading.Event,
        attempt: int,
        message_id: str = "",
        watch_seconds: float = WATCH_SECONDS,
        progress_seconds: float = PROGRESS_SECONDS,
    ) -> None:
        self.s3 = s3
        self.job = job
        self.claim = claim
        self.cancel_key = cancel_key
        self.events = events
        self.abort = abort
        self.attempt = attempt
        self.message_id = message_id
        self.watch_seconds = watch_seconds
        self.progress_seconds = progress_seconds
        self.interrupt = threading.Event()  # set on a cancel request or the worker's stop: the processor is killed
        self.cancel_request: CancelRequest | None = None
        self.progress: Progress | None = None
        self.parameters: dict[str, Value] | None = None  # the job's validated parameters, for its progress events
        self._reader: ProgressReader | None = None
        self._reported: Progress | None = None
        self._reported_at = float("-inf")
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def read_progress_with(self, reader: ProgressReader | None) -> None:
        """Where progress comes from from now on (the processor's progress file, or its log); None stops reading."""
        self._reader = reader

    @property
    def cancelled(self) -> bool:
        """True once a cancel request for this upload was seen."""
        return self.cancel_request is not None

    def check_cancel(self) -> CancelRequest | None:
        """Read the cancel marker now; on a request for this upload, remember it and set `interrupt`."""
        if self.cancel_request is None:
            request = pending_cancel(self.s3, self.job.bucket, self.cancel_key, self.job.etag, self.job.version_id)
            if request is not None:
                get_logger().warning("cancel requested: stopping the job", extra={"requested_at": request.requested_at})
                self.cancel_request = request
                self.interrupt.set()
        return self.cancel_request

    def beat(self) -> None:
        """One look: progress (claim and event when changed and due), then the cancel marker."""
        self._report_progress()
        self.check_cancel()

    @contextmanager
    def running(self) -> Iterator[JobWatch]:
        """Beat in a daemon thread for the duration of a with-block."""
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="job-watch", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stopped.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        next_beat = time.monotonic() + min(FIRST_BEAT_SECONDS, self.watch_seconds)
        while not self._stopped.wait(POLL_SECONDS):
            if self.abort.is_set():
                self.interrupt.set()
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + self.watch_seconds
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - the watch informs; it must never take the job down with it
                get_logger().exception("the job watch failed unexpectedly; the job goes on")

    def _report_progress(self) -> None:
        if self._reader is None:
            return
        progress = self._reader()
        if progress is None or progress == self._reported:
            return
        self.progress = progress
        now = time.monotonic()
        if now - self._reported_at < self.progress_seconds:
            return
        self._reported, self._reported_at = progress, now
        self.claim.progress = progress.to_dict()
        self.claim.refresh()  # the claim carries the progress for `lew status` and `lew wait`
        self.events.emit(
            PROGRESS,
            self.job,
            attempt=self.attempt,
            message_id=self.message_id,
            progress=progress.to_dict(),
            parameters=self.parameters,
        )
