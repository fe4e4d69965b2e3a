"""Run lew jobs from Dagster: a Pipes client modelled on dagster-aws's PipesECSClient (`pip install lew[dagster]`).

    import dagster as dg
    from lew.dagster import PipesLewClient

    @dg.asset
    def scene(context: dg.AssetExecutionContext, lew: PipesLewClient) -> dg.MaterializeResult:
        job = lew.run(context=context, path=Path("scenes/marbles"), parameters={"width": 320, "height": 240})
        return job.get_materialize_result()

    defs = dg.Definitions(assets=[scene], resources={"lew": PipesLewClient()})

`run` packs a folder into a zip (or takes an archive as it is), uploads it as its own job under
`<input prefix>dagster/<run id>/<op>/` (`<op>.retry-N` on a retry), and waits for the job's outcome while logging
its state and progress. `parameters` are the job's parameters for the processor (as `lew submit --param` sends
them); `extras` reach a processor written with dagster-pipes. The materialization carries the manifest's metadata
(outputs with their S3 URLs and sizes, phase durations, parameters, task ARN); a job that fails, is cancelled,
dead-lettered or overruns `timeout` raises `dagster.Failure` with the manifest's error. Terminating or
interrupting the Dagster run (Ctrl-C) cancels the job (`lew cancel`), as PipesECSClient stops its task.

Where PipesECSClient puts Dagster's two bootstrap values in the task's environment, this client puts them in the
upload's S3 object metadata; the context and the messages live under `<result prefix>.lew-pipes/` (deleted when
the session ends). A processor written with dagster-pipes calls `open_dagster_pipes()` as usual, and the worker
relays what it reports (worker/pipes.py); povray, command and other processors need nothing.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import AssetExecutionContext, Failure, MetadataValue, OpExecutionContext, PipesClient
from dagster._core.definitions.resource_annotation import TreatAsResourceParam
from dagster._core.pipes.client import PipesClientCompletedInvocation, PipesContextInjector, PipesMessageReader
from dagster._core.pipes.context import PipesMessageHandler
from dagster._core.pipes.utils import open_pipes_session
from dagster._utils.interrupts import capture_interrupts
from dagster_aws.pipes import PipesS3ContextInjector, PipesS3MessageReader
from dagster_pipes import (
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    PIPES_PROTOCOL_VERSION_FIELD,
    PipesExtras,
    PipesParams,
)

from lew.client import TIMED_OUT, Client, JobState, Upload
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
from worker.pipes import CONTEXT_METADATA, MESSAGES_METADATA, PIPES_FOLDER

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from lew.ops import ManifestSummary

# The reader looks for the next chunk this often; the worker relays chunks every 2 s (worker/pipes.py).
MESSAGE_READ_SECONDS = 1.0


class LewPipesContextInjector(PipesS3ContextInjector):
    """PipesS3ContextInjector whose note, when the processor reported nothing, says why that is normal for lew."""

    def no_messages_debug_text(self) -> str:
        """What Dagster adds to its "did not receive any messages" warning."""
        return (
            "the processor did not call open_dagster_pipes(), which povray and plain commands need not do: the job's "
            "manifest metadata and output arrive all the same (the worker gives a processor that does call it a "
            "file-based context; docs/worker.md, Dagster Pipes)"
        )


class LewPipesMessageReader(PipesS3MessageReader):
    """PipesS3MessageReader whose chunks live under `<result prefix>.lew-pipes/`, where the worker may write them.

    It reads the chunks every `interval` seconds while the job runs, and once more when the session ends: by then
    the job has its outcome, and the worker relays every chunk before it writes the manifest (worker/pipes.py), so
    it does not wait for more (Dagster's threaded readers wait 10 s for a processor that reports nothing). The
    chunks are deleted when the session ends, after the reader has read them all.
    """

    def __init__(
        self,
        *,
        bucket: str,
        client: S3Client,
        result_prefix: str,
        interval: float = MESSAGE_READ_SECONDS,
        include_stdio_in_messages: bool = False,
    ) -> None:
        super().__init__(
            interval=interval, bucket=bucket, client=client, include_stdio_in_messages=include_stdio_in_messages
        )
        self.folder = f"{result_prefix}{PIPES_FOLDER}"

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        """Relay the chunks to `handler` in a thread while the session runs, and what is left when it ends."""
        with self.get_params() as params:
            ended = threading.Event()
            thread = threading.Thread(
                target=self._read_until_ended, args=(handler, params, ended), name="lew-pipes-reader", daemon=True
            )
            thread.start()
            try:
                yield params
            finally:
                ended.set()
                thread.join()

    def _read_until_ended(self, handler: PipesMessageHandler, params: PipesParams, ended: threading.Event) -> None:
        try:
            while True:
                last_round = ended.is_set()  # read before the chunks: no chunk can follow the job's outcome
                while (chunk := self.download_messages_chunk(self.counter, params)) is not None:
                    self.counter += 1
                    for line in chunk.splitlines():
                        with contextlib.suppress(json.JSONDecodeError):  # a torn last line, as Dagster's reader
                            message = json.loads(line)
                            if isinstance(message, dict) and PIPES_PROTOCOL_VERSION_FIELD in message:
                                handler.handle_message(message)  # type: ignore[arg-type]  # a checked PipesMessage
                if last_round or handler.received_closed_message:
                    return
                ended.wait(self.interval)
        except Exception:
            handler.report_pipes_framework_exception(f"{type(self).__name__} messages thread", sys.exc_info())
            raise

    def no_messages_debug_text(self) -> str:
        """What Dagster adds to its "did not receive any messages" warning."""
        return f"no message chunk under s3://{self.bucket}/{self.folder}: the processor reported nothing through Pipes"

    @contextmanager
    def get_params(self) -> Iterator[PipesParams]:
        """The bucket and a fresh key prefix in the Pipes folder; the chunks under it are deleted afterwards."""
        with super().get_params() as params:
            key_prefix = f"{self.folder}{params['key_prefix']}"
            try:
                yield {**params, "key_prefix": key_prefix}
            finally:
                _delete_prefix(self.client, self.bucket, f"{key_prefix}/")


class PipesLewClient(PipesClient, TreatAsResourceParam):
    """A Pipes client that runs each `run` as one lew job and waits for its outcome.

    Args:
        client: the lew stack to use; by default `Client.connect(endpoint=..., stack=...)` when first needed (with
            neither, the running `lew local up`), so that loading the definitions never needs the stack.
        endpoint, stack: where `Client.connect` looks when no client is given (a local endpoint URL, a stack name).
        context_injector: by default a LewPipesContextInjector (PipesS3ContextInjector) writing under
            `<result prefix>.lew-pipes/`.
        message_reader: by default a LewPipesMessageReader (chunks under `<result prefix>.lew-pipes/`).
        forward_termination: cancel the job when the step stops waiting for it (default True): the Dagster run is
            terminated or interrupted (Ctrl-C: DagsterExecutionInterruptedError, KeyboardInterrupt), or the wait
            fails; the exception is re-raised.
        poll_seconds: how often the job's state is read (default: the client's, 2 s).
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        endpoint: str | None = None,
        stack: str | None = None,
        context_injector: PipesContextInjector | None = None,
        message_reader: PipesMessageReader | None = None,
        forward_termination: bool = True,
        poll_seconds: float | None = None,
    ) -> None:
        self._client = client
        self._where = {"endpoint": endpoint, "stack": stack}
        self._context_injector = context_injector
        self._message_reader = message_reader
        self.forward_termination = forward_termination
        self.poll_seconds = poll_seconds

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    @property
    def client(self) -> Client:
        """The lew client (connected on first use)."""
        if self._client is None:
            self._client = Client.connect(**self._where)
        return self._client

    def run(  # type: ignore[override]  # PipesClient.run takes **kwargs; each client names its own
        self,
        *,
        context: OpExecutionContext | AssetExecutionContext,
        path: Path | str,
        name: str | None = None,
        extras: PipesExtras | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
        timeout: float | None = None,
    ) -> PipesClientCompletedInvocation:
        """Submit `path` (an archive, or a folder packed as `<folder>.zip`) as a job and wait for its outcome.

        `name`: the file name under `<input prefix>dagster/<run id>/<op>/` (default: the archive's). `extras` reach the
        processor through Pipes. `parameters` (name -> text, number or boolean) are the job's parameters, which the
        processor validates (docs/worker.md, "Job parameters"); they are recorded as `lew/parameters`. `timeout` in
        seconds (None: wait as long as the job takes); on a timeout the job is cancelled. Returns the completed
        invocation, whose results carry the manifest's metadata; raises dagster.Failure with the manifest's error
        for a job that does not succeed (a parameter the processor refuses among them), and LewError, before
        anything is uploaded, for an upload lew refuses (missing file, a suffix the stack skips, a parameter S3
        metadata cannot carry).
        """
        texts = parameter_texts(parameters)  # refused in one line before anything is packed or uploaded
        client = self.client
        target = client.target
        with (
            archive_of(Path(path)) as archive,
            open_pipes_session(
                context=context,
                context_injector=self._context_injector
                or LewPipesContextInjector(
                    bucket=target.bucket, client=client.s3, key_prefix=f"{target.result_prefix}{PIPES_FOLDER}"
                ),
                message_reader=self._message_reader
                or LewPipesMessageReader(bucket=target.bucket, client=client.s3, result_prefix=target.result_prefix),
                extras=extras,
            ) as session,
        ):
            bootstrap = session.get_bootstrap_env_vars()
            metadata = {
                CONTEXT_METADATA: bootstrap[DAGSTER_PIPES_CONTEXT_ENV_VAR],
                MESSAGES_METADATA: bootstrap[DAGSTER_PIPES_MESSAGES_ENV_VAR],
            }
            op = context.op_execution_context if isinstance(context, AssetExecutionContext) else context
            step = str(op.op_handle) + (f".retry-{op.retry_number}" if op.retry_number else "")
            key_name = run_key_name("dagster", context.run.run_id, step, name or archive.name)
            requested_by = f"dagster run {context.run.run_id}"
            with (
                cancel_on_stop(client, key_name, requested_by, context.log.warning, shield=capture_interrupts)
                if self.forward_termination
                else nullcontext()
            ):
                upload = client.submit(archive, name=key_name, metadata=metadata, parameters=texts)
                context.log.info(f"[lew] submitted {upload.uri} (ETag {upload.etag}){parameters_line(texts)}")
                state = self._wait(context, upload, timeout)
        metadata_out = job_metadata(state)
        if state.status != SUCCEEDED:
            # A permanent failure is not retried by a RetryPolicy: another attempt would fail the same way.
            raise Failure(description=failure_line(state), metadata=metadata_out, allow_retries=retryable(state))
        context.log.info(
            f"[lew] job {upload.uri} succeeded: "
            f"{plural(len(state.manifest.outputs) if state.manifest else 0, 'output')}"
        )
        return PipesClientCompletedInvocation(session, metadata=metadata_out)

    def _wait(
        self, context: OpExecutionContext | AssetExecutionContext, upload: Upload, timeout: float | None
    ) -> JobState:
        """Poll until the job has an outcome, logging states and progress; cancel it on a timeout."""
        client = self.client
        if self.poll_seconds is not None:
            client.poll_seconds = self.poll_seconds
        log = StateLog(context.log.info)
        state = log.settled(client.wait(upload, timeout=timeout, on_update=log))
        if state.status == TIMED_OUT:
            context.log.warning(f"[lew] {upload.uri} has no outcome after {timeout:g} s: cancelling the job")
            cancel_quietly(client, upload, f"dagster run {context.run.run_id}", context.log.info)
        for line in processor_log(state):
            context.log.info(f"[lew] {line}")
        return state


def job_metadata(state: JobState) -> dict[str, Any]:
    """The Dagster metadata of a job's outcome: status, source, manifest, outputs (S3 URLs, sizes), durations, task.

    Keys are `lew/...`; durations are seconds (`lew/seconds/<phase>`: download, unpack, process, upload, total);
    `lew/parameters` is the job's parameters as the manifest records them (else as the upload carries them), text
    by name.
    """
    bucket = state.upload.bucket
    metadata: dict[str, Any] = {
        "lew/status": MetadataValue.text(state.status),
        "lew/source": MetadataValue.url(state.upload.uri),
    }
    if state.upload.etag:
        metadata["lew/etag"] = MetadataValue.text(state.upload.etag)
    summary: ManifestSummary | None = state.manifest
    recorded = summary.document.get("parameters") if summary is not None else None
    parameters = recorded if isinstance(recorded, dict) else state.upload.parameters
    if parameters:
        metadata["lew/parameters"] = MetadataValue.json(dict(parameters))
    if summary is None:
        if state.error:
            metadata["lew/error"] = MetadataValue.text(state.error)
        return metadata
    document = summary.document
    outputs = [item for item in document.get("outputs") or [] if isinstance(item, dict)]
    metadata["lew/manifest"] = MetadataValue.url(f"s3://{bucket}/{summary.key}")
    metadata["lew/outputs"] = MetadataValue.json(
        [
            {
                "url": f"s3://{bucket}/{item.get('key')}",
                "size": item.get("size"),
                "content_type": item.get("content_type"),
            }
            for item in outputs
        ]
    )
    metadata["lew/output_count"] = MetadataValue.int(len(outputs))
    metadata["lew/output_bytes"] = MetadataValue.int(sum(int(item.get("size") or 0) for item in outputs))
    for phase, seconds in (document.get("timings") or {}).items():
        if isinstance(seconds, int | float):
            metadata[f"lew/seconds/{phase}"] = MetadataValue.float(float(seconds))
    for field_name in ("processor", "task_arn", "log_stream"):
        if isinstance(document.get(field_name), str):
            metadata[f"lew/{field_name}"] = MetadataValue.text(document[field_name])
    if isinstance(document.get("attempt"), int):
        metadata["lew/attempt"] = MetadataValue.int(document["attempt"])
    error = document.get("error")
    if isinstance(error, dict):
        metadata["lew/error"] = MetadataValue.text(f"{error.get('type')}: {error.get('message')}")
    return metadata


def _delete_prefix(s3: S3Client, bucket: str, prefix: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [item["Key"] for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True})
