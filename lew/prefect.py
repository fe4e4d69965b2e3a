"""Run lew jobs from Prefect: a task that submits a job and waits for its outcome (`pip install lew[prefect]`).

    from prefect import flow
    from lew.prefect import lew_job

    @flow
    def render() -> None:
        manifest = lew_job(Path("scenes/marbles"), parameters={"width": 320, "height": 240}, timeout=900)
        print([output["key"] for output in manifest["outputs"]])

    # retries belong to the task, and skip permanent failures: lew_job.with_options(retries=2)

The task packs a folder into a zip (or takes an archive as it is), uploads it as its own job under
`<input prefix>prefect/<task run id>/attempt-<n>/`, logs the job's states and progress to Prefect's run logger,
and returns the manifest (a dict, docs/ARCHITECTURE.md). A job that fails, is cancelled, dead-lettered or overruns
`timeout` raises LewJobFailed with the manifest's error, so that Prefect's own task retries apply (each attempt is
a new job) to the failures another attempt may not repeat: the task's `retry_condition_fn` is
`retry_unless_permanent`, so a permanent failure (the processor rejected the input) is not retried. A run that
stops waiting without the job's outcome (Ctrl-C, a flow run cancelled or crashed: KeyboardInterrupt, Prefect's
TerminationSignal, a task timeout, an error while polling) cancels the job, then re-raises. The task caches
nothing: a job's outcome belongs to its run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import State, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run

from lew.client import TIMED_OUT, Client, JobState
from lew.errors import LewError
from lew.job_parameters import ParameterValue, parameter_texts
from lew.orchestrate import (
    StateLog,
    archive_of,
    cancel_on_stop,
    cancel_quietly,
    failure_line,
    parameters_line,
    processor_log,
    retryable,
    run_key_name,
)
from lew.ui import plural
from worker.manifest import SUCCEEDED


class LewJobFailed(LewError):  # noqa: N818 - reads as what happened, like the CLI's errors
    """A lew job ended without success; `state` is its final JobState (manifest and error, when there are)."""

    def __init__(self, state: JobState) -> None:
        super().__init__(failure_line(state))
        self.state = state


def retry_unless_permanent(task: object, task_run: object, state: State[Any]) -> bool:
    """Prefect's `retry_condition_fn` of `lew_job`: retry a failure that another attempt (a new job) may not repeat.

    A failed job is retried as lew.orchestrate.retryable says: not for a permanent error in its manifest (the
    processor rejected the input, a bad parameter, an unsafe archive), a cancelled or a dead-lettered job; yes for
    a transient error and a job that overran `timeout`. An upload lew refuses (LewError: missing file, a parameter
    S3 cannot carry) is not retried; any other error (S3 unreachable, a Prefect task timeout) is.
    """
    error = state.data if isinstance(state.data, BaseException) else _exception_of(state)
    if isinstance(error, LewJobFailed):
        return retryable(error.state)
    return not isinstance(error, LewError)


def _exception_of(state: State[Any]) -> BaseException | None:
    try:
        result = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - a result Prefect cannot read (missing, not persisted): nothing to judge by
        return None
    return result if isinstance(result, BaseException) else None


@task(name="lew job", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_permanent)
def lew_job(
    path: Path | str,
    *,
    name: str | None = None,
    parameters: Mapping[str, ParameterValue] | None = None,
    client: Client | None = None,
    timeout: float | None = None,
    poll_seconds: float | None = None,
) -> dict[str, Any]:
    """Submit `path` (an archive, or a folder packed as `<folder>.zip`) as a lew job; its manifest when it succeeds.

    `client`: the stack (default: `Client.connect()`, the running `lew local up`; `Client.connect(stack=NAME)` for a
    deployed one). `name`: the file name of the upload (default: the archive's). `parameters` (name -> text, number
    or boolean) are the job's parameters, which the processor validates (docs/worker.md, "Job parameters").
    `timeout` in seconds (None: as long as the job takes); on a timeout the job is cancelled. Raises LewJobFailed
    (the manifest's error) when the job fails (a parameter the processor refuses among them), is cancelled,
    dead-lettered or times out, and LewError, before anything is uploaded, for an upload lew refuses (missing file,
    a suffix the stack skips, a parameter S3 metadata cannot carry).
    """
    texts = parameter_texts(parameters)  # refused in one line before anything is packed or uploaded
    logger = get_run_logger()
    client = client or Client.connect()
    if poll_seconds is not None:
        client.poll_seconds = poll_seconds
    run_id = task_run.get_id() or "no-task-run"
    with archive_of(Path(path)) as archive:
        key_name = run_key_name("prefect", run_id, f"attempt-{task_run.get_run_count()}", name or archive.name)
        # A crashed or cancelled run (Ctrl-C, Prefect's TerminationSignal, a task timeout) cancels the job.
        with cancel_on_stop(client, key_name, f"prefect task run {run_id}", logger.warning):
            upload = client.submit(archive, name=key_name, parameters=texts)
            logger.info(f"[lew] submitted {upload.uri} (ETag {upload.etag}){parameters_line(texts)}")
            log = StateLog(logger.info)
            state = log.settled(client.wait(upload, timeout=timeout, on_update=log))
    if state.status == TIMED_OUT:
        logger.warning(f"[lew] {upload.uri} has no outcome after {timeout:g} s: cancelling the job")
        cancel_quietly(client, upload, f"prefect task run {run_id}", logger.info)
    for line in processor_log(state):
        logger.info(f"[lew] {line}")
    if state.status != SUCCEEDED or state.manifest is None:
        raise LewJobFailed(state)
    outputs = plural(len(state.manifest.outputs), "output")
    logger.info(f"[lew] {upload.uri} succeeded: {outputs} (manifest {state.manifest.key})")
    return state.manifest.document
