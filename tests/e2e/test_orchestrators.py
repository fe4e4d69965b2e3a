"""lew from Dagster and Prefect, with the real libraries, against the local stack (moto, real launcher and workers).

One stack runs the `command` processor with a small script: it writes an output and prints a line (with the job
parameters `label` and `level` it declares, when given); with `pipes.txt` in its archive it also reports through
dagster-pipes; with `fail.txt` it rejects its input (exit 3); with `slow.txt` it sleeps until it is cancelled; with
`flaky.txt` it fails with a KeyError (exit 1), which lew retries.
"""

# No `from __future__ import annotations`: Dagster reads the assets' annotations at definition time.

import importlib.util
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from lew.client import Client
from lew.dagster import PipesLewClient
from lew.local.stack import LocalStack
from lew.orchestrate import StateLog
from lew.target import from_local_state
from tests.e2e.conftest import LogCollector, fast_settings, make_zip

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    # Dagster's own Pipes code calls its deprecated context.run_id and its preview expected_writer_count.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:dagster._core.pipes.context"),
    pytest.mark.filterwarnings("ignore:.*expected_writer_count.*"),
]

PROCESSOR_SCRIPT = """
import os, pathlib, sys, time
source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
if "LEW_PARAM_LABEL" in os.environ:
    print(f"label {os.environ['LEW_PARAM_LABEL']} level {os.environ.get('LEW_PARAM_LEVEL')}")
if (source / "fail.txt").exists():
    print("bad scene: fail.txt says so")
    sys.exit(3)
if (source / "slow.txt").exists():
    time.sleep(120)
if (source / "flaky.txt").exists():
    {}["amount"]  # a KeyError: exit 1, a transient failure lew retries
(out / "result.txt").write_text("done")
print("rendered result.txt")
if (source / "pipes.txt").exists():
    from dagster_pipes import open_dagster_pipes
    with open_dagster_pipes() as pipes:
        pipes.log.info(f"hello from the processor at quality {pipes.get_extra('quality')}")
        pipes.report_asset_materialization(metadata={"frames": 3})
        pipes.report_asset_check(check_name="has_frames", passed=True)
"""


# The job parameters the test processor accepts (ProcessParameters).
DECLARED_PARAMETERS = "label:text:16, level:int:1..3"


def command_stack(script: Path, logs: LogCollector, *, declared: str = DECLARED_PARAMETERS) -> LocalStack:
    """A local stack running `python <script> {input_dir} {output_dir}` as its command processor."""
    command = shlex.join([sys.executable, str(script), "{input_dir}", "{output_dir}"])
    settings = fast_settings(processor="command", parameters={"ProcessCommand": command, "ProcessParameters": declared})
    return LocalStack(settings, sink=logs)


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory, logs: LogCollector) -> Iterator[LocalStack]:
    """A stack per test: the in-process launcher reads AWS_ENDPOINT_URL, which every test's fixture resets."""
    script = tmp_path_factory.mktemp("processor") / "process.py"
    script.write_text(PROCESSOR_SCRIPT, encoding="utf-8")
    with command_stack(script, logs) as started:
        yield started


@pytest.fixture
def client(stack: LocalStack) -> Client:
    return Client(from_local_state(stack.state()), poll_seconds=0.5)


def scene_asset(
    folder: Path, *, checked: bool = False, parameters: dict[str, Any] | None = None, retries: int = 0
) -> dg.AssetsDefinition:
    """An asset that runs `folder` through lew (declaring the check the Pipes processor reports when `checked`)."""
    checks = [dg.AssetCheckSpec("has_frames", asset="scene")] if checked else []
    policy = dg.RetryPolicy(max_retries=retries) if retries else None

    @dg.asset(name="scene", check_specs=checks, retry_policy=policy)
    def scene(context: dg.AssetExecutionContext, lew: PipesLewClient) -> dg.MaterializeResult:
        job = lew.run(context=context, path=folder, extras={"quality": 9}, parameters=parameters, timeout=120)
        return job.get_materialize_result()

    return scene


def materialize(asset: dg.AssetsDefinition, client: Client) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([asset], instance=instance, resources={"lew": PipesLewClient(client)}, raise_on_error=False)
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result, messages


def test_dagster_asset_materializes_with_the_manifest_metadata_and_the_processors_own(
    client: Client, tmp_path: Path
) -> None:
    # GIVEN a folder whose processor reports through dagster-pipes
    folder = tmp_path / "scene"
    folder.mkdir()
    (folder / "pipes.txt").write_text("yes", encoding="utf-8")

    # WHEN an asset runs it through lew
    result, messages = materialize(scene_asset(folder, checked=True), client)

    # THEN the run succeeds, and the materialization carries the manifest's metadata...
    assert result.success, messages
    [materialization] = result.asset_materializations_for_node("scene")
    metadata = materialization.metadata
    assert metadata["lew/status"].value == "succeeded"
    [output] = metadata["lew/outputs"].value
    assert output["url"].startswith("s3://") and output["url"].endswith("/result.txt") and output["size"] == 4
    assert metadata["lew/output_count"].value == 1
    assert metadata["lew/seconds/total"].value > 0
    assert metadata["lew/processor"].value == "command" and metadata["lew/attempt"].value == 1
    assert metadata["lew/manifest"].value.endswith("/manifest.json")
    # ...and the processor's own metadata and check, which it reported through Pipes with no credentials
    assert metadata["frames"].value == 3
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("has_frames", True)
    # ...and the logs arrived: the processor's Pipes log, the job's states and the processor's output
    assert any("hello from the processor at quality 9" in message for message in messages), messages
    assert any("rendered result.txt" in message for message in messages), messages
    assert any(message.endswith(": succeeded") for message in messages), messages
    # ...and the Pipes context and message chunks were cleaned up with the session
    assert client.s3.list_objects_v2(Bucket=client.target.bucket, Prefix="results/.lew-pipes/")["KeyCount"] == 0


def test_dagster_plain_processor_needs_no_pipes(client: Client, tmp_path: Path) -> None:
    # GIVEN a folder whose processor knows nothing of Dagster
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "input.txt").write_text("x", encoding="utf-8")

    # WHEN an asset runs it
    result, messages = materialize(scene_asset(folder), client)

    # THEN it materializes with the manifest's metadata alone (the check is simply not evaluated)
    assert result.success, messages
    [materialization] = result.asset_materializations_for_node("scene")
    assert materialization.metadata["lew/output_count"].value == 1
    # ...and Dagster's note on the missing Pipes messages says why that is normal, not to pass a loader or writer;
    # the reader read once more at the end instead of waiting for messages that cannot come ("not readable")
    assert any("did not call open_dagster_pipes()" in message for message in messages), messages
    assert not any("explicitly passed" in message or "not readable" in message for message in messages), messages


def test_dagster_failing_job_fails_the_run_with_its_error(client: Client, tmp_path: Path) -> None:
    # GIVEN an archive the processor rejects, and an asset with a retry policy
    archive = make_zip(tmp_path / "bad.zip", {"fail.txt": "no"})

    # WHEN the asset runs it
    result, messages = materialize(scene_asset(archive, retries=2), client)

    # THEN the run fails, with the manifest's error in Dagster's failure, and the permanent failure is not retried
    assert not result.success
    assert not [event for event in result.all_events if event.is_step_up_for_retry]
    [failure] = result.get_step_failure_events()
    data = failure.step_failure_data
    assert data.user_failure_data is not None
    assert "ProcessorRejected" in (data.user_failure_data.description or ""), data
    assert "exit code 3" in (data.user_failure_data.description or "")
    assert data.user_failure_data.metadata["lew/status"].value == "failed"
    assert any("bad scene: fail.txt says so" in message for message in messages), messages


def test_dagster_terminated_run_cancels_the_job(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a slow job, and a Dagster run that is interrupted once the job runs (as a terminated run is)
    archive = make_zip(tmp_path / "slow.zip", {"slow.txt": "zz"})
    seen: list[Any] = []
    original = StateLog.__call__

    def interrupt_when_running(self: StateLog, state: Any) -> None:
        original(self, state)
        if state.status == "running":
            seen.append(state.upload)
            raise dg.DagsterExecutionInterruptedError("run terminated")

    monkeypatch.setattr(StateLog, "__call__", interrupt_when_running)

    # WHEN the asset runs
    result, _ = materialize(scene_asset(archive), client)

    # THEN the run did not succeed, and the job ends cancelled rather than running on
    assert not result.success
    [upload] = seen
    final = client.wait(upload, timeout=60)
    assert final.status == "cancelled", final
    assert final.manifest is not None and "dagster run" in (final.error or "")


def test_dagster_parameters_reach_the_processor_and_the_metadata(client: Client, tmp_path: Path) -> None:
    # GIVEN a folder, and job parameters the processor declares
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "input.txt").write_text("x", encoding="utf-8")

    # WHEN an asset runs it with them
    result, messages = materialize(scene_asset(folder, parameters={"label": "north", "level": 2}), client)

    # THEN the processor read them (LEW_PARAM_<NAME>), the log names them, and the metadata records them
    assert result.success, messages
    assert any("label north level 2" in message for message in messages), messages
    assert any("with parameters label=north, level=2" in message for message in messages), messages
    [materialization] = result.asset_materializations_for_node("scene")
    assert materialization.metadata["lew/parameters"].value == {"label": "north", "level": "2"}


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"level": 9}, "level"),  # out of bounds: the processor refuses it
        ({"colour": "red"}, "colour"),  # a name the processor does not declare
    ],
)
def test_dagster_parameter_the_processor_refuses_fails_the_run_naming_it(
    client: Client, tmp_path: Path, parameters: dict[str, Any], expected: str
) -> None:
    # GIVEN a folder, and a parameter the processor does not accept
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "input.txt").write_text("x", encoding="utf-8")

    # WHEN an asset runs it
    result, _ = materialize(scene_asset(folder, parameters=parameters), client)

    # THEN the step fails before anything is uploaded, with the processor's own rule naming it (lew knows the local
    # stack's processor and its ProcessParameters; the worker refuses the same in a manifest otherwise)
    assert not result.success
    [failure] = result.get_step_failure_events()
    error = str(failure.step_failure_data.error)
    assert f"parameter {expected}=" in error, error
    listed = client.s3.list_objects_v2(Bucket=client.target.bucket, Prefix="incoming/dagster/")
    assert listed["KeyCount"] == 0


def test_dagster_parameter_s3_cannot_carry_is_refused_before_the_upload(client: Client, tmp_path: Path) -> None:
    # GIVEN parameters over S3's 2 KB of metadata
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "input.txt").write_text("x", encoding="utf-8")

    # WHEN an asset runs it
    result, _ = materialize(scene_asset(folder, parameters={"label": "x" * 3000}), client)

    # THEN the step fails with one line naming the limit, and nothing was uploaded
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "more than S3's limit of 2048 bytes" in str(failure.step_failure_data.error)
    listed = client.s3.list_objects_v2(Bucket=client.target.bucket, Prefix="incoming/dagster/")
    assert listed["KeyCount"] == 0


DEFINITIONS = """
import os
from pathlib import Path
import dagster as dg
from lew.dagster import PipesLewClient

@dg.asset
def slow(context: dg.AssetExecutionContext, lew: PipesLewClient) -> dg.MaterializeResult:
    return lew.run(context=context, path=Path(os.environ["SLOW_ARCHIVE"]), timeout=600).get_materialize_result()

defs = dg.Definitions(assets=[slow], resources={"lew": PipesLewClient(endpoint=os.environ["LEW_ENDPOINT"])})
"""


def test_dagster_ctrl_c_of_asset_materialize_cancels_the_job(stack: LocalStack, client: Client, tmp_path: Path) -> None:
    # GIVEN `dagster asset materialize` (the multiprocess executor: the step in a child process) running a slow job
    archive = make_zip(tmp_path / "slow.zip", {"slow.txt": "zz"})
    definitions = tmp_path / "definitions.py"
    definitions.write_text(DEFINITIONS, encoding="utf-8")
    (tmp_path / "dagster_home").mkdir()
    environment = {
        **os.environ,
        "LEW_ENDPOINT": stack.endpoint,
        "SLOW_ARCHIVE": str(archive),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-f", str(definitions)]
    process = subprocess.Popen(
        [*command, "--select", "slow"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, which Ctrl-C in a terminal signals as a whole
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True).start()
    submitted: str | None = None
    try:
        while True:  # the job's key once submitted, then its running state (events, not sleeps)
            line = lines.get(timeout=180)
            if "[lew] submitted s3://" in line:
                submitted = line.split("[lew] submitted s3://", 1)[1].split(" ", 1)[0]
            if submitted and line.rstrip().endswith(": running"):
                break

        # WHEN Ctrl-C reaches the process group
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    # THEN the run failed, and the job ends cancelled by the Dagster run rather than running on
    assert process.returncode != 0
    key = submitted.split("/", 1)[1]
    final = client.wait(client.upload(key), timeout=120)
    assert final.status == "cancelled", final
    assert "dagster run" in (final.error or ""), final


def test_dagster_log_shows_a_retrying_job_with_its_error(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a job that fails transiently, and a run that stops once the job is seen retrying (ending the test)
    archive = make_zip(tmp_path / "flaky.zip", {"flaky.txt": "x"})
    original = StateLog.__call__

    def stop_when_retrying(self: StateLog, state: Any) -> None:
        original(self, state)
        if state.status == "retrying":
            raise dg.DagsterExecutionInterruptedError("seen retrying")

    monkeypatch.setattr(StateLog, "__call__", stop_when_retrying)

    # WHEN the asset runs
    result, messages = materialize(scene_asset(archive), client)

    # THEN the run's log showed the retrying state with the attempt and the processor's error, not just "queued"
    assert not result.success
    retrying = [message for message in messages if ": retrying after attempt 1" in message]
    assert retrying and "KeyError" in retrying[0] and "'amount'" in retrying[0], messages


def test_dagster_missing_path_is_one_clear_line(client: Client, tmp_path: Path) -> None:
    # GIVEN a path that does not exist
    # WHEN an asset runs it
    result, _ = materialize(scene_asset(tmp_path / "nowhere"), client)
    # THEN the run fails naming it
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "nowhere: no such file or folder" in str(failure.step_failure_data.error)


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    """Prefect's temporary server (a local SQLite database; no network), shared by the Prefect tests."""
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry calls to a network we lack
        with prefect_test_harness(server_startup_timeout=120):
            yield


def flow_run_logs(flow_run_id: Any) -> list[str]:
    """The messages the Prefect server holds for a flow run and its task runs (once the log handler flushed)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # drains the process-wide log worker
    with get_client(sync_client=True) as prefect:
        logs = prefect.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def test_prefect_flow_returns_the_manifest_and_logs_the_job(
    prefect_server: None, client: Client, tmp_path: Path
) -> None:
    from prefect import flow

    from lew.prefect import lew_job

    # GIVEN a flow that runs a folder through lew
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "input.txt").write_text("x", encoding="utf-8")

    @flow
    def render() -> dict[str, Any]:
        return lew_job(folder, client=client, parameters={"label": "south", "level": 3}, timeout=120)

    # WHEN it runs
    state = render(return_state=True)

    # THEN it returns the manifest, and the job's states and output reached Prefect's logger
    manifest = state.result()
    assert manifest["status"] == "succeeded"
    assert manifest["parameters"] == {"label": "south", "level": "3"}
    assert [output["key"].rsplit("/", 1)[-1] for output in manifest["outputs"]] == ["result.txt"]
    assert "/prefect/" in manifest["source"]["key"] and "/attempt-1/" in manifest["source"]["key"]
    logged = flow_run_logs(state.state_details.flow_run_id)
    assert any(line.endswith(": succeeded") for line in logged), logged
    assert any("rendered result.txt" in line for line in logged), logged
    assert any("label south level 3" in line for line in logged), logged
    assert any("with parameters label=south, level=3" in line for line in logged), logged


def test_prefect_permanent_failure_fails_the_flow_with_its_error_without_a_retry(
    prefect_server: None, client: Client, tmp_path: Path
) -> None:
    from prefect import flow

    from lew.prefect import LewJobFailed, lew_job

    # GIVEN a flow whose lew task may be retried twice, on an archive the processor rejects (a permanent failure)
    archive = make_zip(tmp_path / "bad.zip", {"fail.txt": "no"})

    @flow
    def render() -> dict[str, Any]:
        return lew_job.with_options(retries=2)(archive, client=client, timeout=120)

    # WHEN it runs
    with pytest.raises(LewJobFailed) as raised:
        render()

    # THEN it fails with the manifest's error after one job: retrying a rejected input would fail the same way
    assert "ProcessorRejected" in str(raised.value) and "exit code 3" in str(raised.value)
    assert "/attempt-1/" in raised.value.state.upload.key
    assert raised.value.state.manifest is not None and raised.value.state.manifest.status == "failed"


def test_prefect_transient_failure_is_retried_as_a_new_job(
    prefect_server: None, client: Client, tmp_path: Path
) -> None:
    from prefect import flow

    from lew.prefect import LewJobFailed, lew_job

    # GIVEN a flow whose lew task may be retried once, on a job that overruns its timeout (a busy queue, say)
    archive = make_zip(tmp_path / "slow.zip", {"slow.txt": "zz"})

    @flow
    def render() -> dict[str, Any]:
        return lew_job.with_options(retries=1)(archive, client=client, timeout=3)

    # WHEN it runs
    with pytest.raises(LewJobFailed) as raised:
        render()

    # THEN Prefect retried it, as a second job, which timed out too and was cancelled
    assert "timed out" in str(raised.value)
    assert "/attempt-2/" in raised.value.state.upload.key


def test_prefect_interrupted_flow_run_cancels_the_job(
    prefect_server: None, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (Prefect's TerminationSignal, a cancelled flow run, re-sends SIGTERM to the process once handled: it is
    # covered without Prefect in tests/unit/lew/test_orchestrate.py, on the same path as this KeyboardInterrupt.)
    from prefect import flow

    from lew.prefect import lew_job

    # GIVEN a slow job, and a flow run interrupted (Ctrl-C) once the job runs
    archive = make_zip(tmp_path / "slow.zip", {"slow.txt": "zz"})
    seen: list[Any] = []
    original = StateLog.__call__

    def stop_when_running(self: StateLog, state: Any) -> None:
        original(self, state)
        if state.status == "running":
            seen.append(state.upload)
            raise KeyboardInterrupt

    monkeypatch.setattr(StateLog, "__call__", stop_when_running)

    @flow
    def render() -> dict[str, Any]:
        return lew_job(archive, client=client, timeout=120)

    # WHEN the flow runs
    with pytest.raises(KeyboardInterrupt):
        render()

    # THEN the interrupt is re-raised, and the job ends cancelled rather than running on
    [upload] = seen
    final = client.wait(upload, timeout=60)
    assert final.status == "cancelled", final
    assert "prefect task run" in (final.error or ""), final


def load_example(name: str) -> Any:
    """An examples/ module, imported from its file as `dagster` and `python` would."""
    path = EXAMPLES / name
    spec = importlib.util.spec_from_file_location(f"lew_example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_examples_run_against_the_local_stack(
    prefect_server: None, logs: LogCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the stack the examples' instructions start: the command processor running examples/summarize.py
    with command_stack(EXAMPLES / "summarize.py", logs, declared="column:text:64") as started:
        monkeypatch.setenv("LEW_ENDPOINT", started.endpoint)

        # WHEN the Dagster definitions' asset is materialized
        definitions = load_example("dagster_definitions.py").defs
        job = definitions.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)

        # THEN it carries the processor's totals, and its check passed
        assert result.success
        [materialization] = result.asset_materializations_for_node("sales_summary")
        assert materialization.metadata["files"].value == 2
        assert materialization.metadata["total"].value == pytest.approx(352.75)
        assert materialization.metadata["column"].value == "amount"
        assert materialization.metadata["lew/parameters"].value == {"column": "amount"}
        assert [check.passed for check in result.get_asset_check_evaluations()] == [True]

        # WHEN the Prefect flow runs
        outputs = load_example("prefect_flow.py").summarize_sales()

        # THEN it returns the summary's key
        assert [key.rsplit("/", 1)[-1] for key in outputs] == ["summary.json"]
