"""`python -m worker` as a real process against a moto server: exit codes, idle exit, heartbeat, SIGTERM."""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from .conftest import Stack, wait_until, zip_bytes

REPO_ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `python -m worker` from the repository root, as the local stack and the container do."""
    return subprocess.Popen(
        [sys.executable, "-m", "worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(worker: subprocess.Popen[str], timeout: float = 30) -> tuple[int, list[dict[str, Any]], str]:
    """Wait for the worker; return its exit code, its JSON log lines and its stderr."""
    stdout, stderr = worker.communicate(timeout=timeout)
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return worker.returncode, lines, stderr


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_worker_exits_0_with_a_summary_after_idle_polls(worker_env: dict[str, str]) -> None:
    # GIVEN an empty queue, and two empty one-second polls meaning "drained"
    worker_env |= {"IDLE_POLLS": "2", "WAIT_TIME_SECONDS": "1"}

    # WHEN the worker runs
    returncode, lines, stderr = finish(start_worker(worker_env))

    # THEN it exits 0 with a summary line
    assert returncode == 0, stderr
    summary = lines[-1]
    assert summary["message"] == "worker finished"
    assert summary["service"] == "lew-worker"
    assert (summary["processed"], summary["failed"], summary["skipped"]) == (0, 0, 0)
    assert summary["stopped_by"] == "drained"
    assert summary["duration"] >= 2


def one_error_line(stdout_lines: list[dict[str, Any]], stderr: str) -> dict[str, Any]:
    """The worker's only output: one ERROR log line, and no traceback anywhere."""
    assert stderr == ""
    [line] = stdout_lines
    assert line["level"] == "ERROR"
    assert line["service"] == "lew-worker"
    assert "exception" not in line
    return line


@pytest.mark.parametrize(
    ("variable", "value"),
    [("VISIBILITY_TIMEOUT", "abc"), ("RECEIVE_BATCH_SIZE", "11"), ("STOP_GRACE_SECONDS", "150"), ("QUEUE_URL", "")],
)
def test_worker_exits_2_with_one_clear_line_on_a_bad_variable(
    worker_env: dict[str, str], variable: str, value: str
) -> None:
    # GIVEN one bad variable
    worker_env[variable] = value

    # WHEN the worker starts
    returncode, lines, stderr = finish(start_worker(worker_env))

    # THEN it exits 2 with one structured line naming it, and no traceback
    assert returncode == 2
    line = one_error_line(lines, stderr)
    assert line["message"].startswith(f"invalid worker configuration: {variable} ")
    assert (line["reason"], line["exit_code"]) == ("configuration", 2)


def test_worker_exits_2_naming_every_bad_variable_at_once(worker_env: dict[str, str]) -> None:
    # GIVEN three bad variables
    worker_env |= {"WAIT_TIME_SECONDS": "99", "RECEIVE_BATCH_SIZE": "0", "VISIBILITY_TIMEOUT": "abc"}

    # WHEN the worker starts
    returncode, lines, stderr = finish(start_worker(worker_env))

    # THEN one line names all three
    assert returncode == 2
    assert one_error_line(lines, stderr)["message"] == (
        "invalid worker configuration: WAIT_TIME_SECONDS must be between 0 and 20, got '99'; "
        "RECEIVE_BATCH_SIZE must be between 1 and 10, got '0'; VISIBILITY_TIMEOUT must be a whole number, got 'abc'"
    )


def test_worker_heartbeat_keeps_a_slow_job_invisible(
    server_stack: Stack, worker_env: dict[str, str], python_command: Callable[[str], str]
) -> None:
    # GIVEN a job that takes about 5 s and a visibility timeout of 3 s
    server_stack.upload("incoming/slow.zip", zip_bytes({"a.txt": b"a"}))
    server_stack.enqueue("incoming/slow.zip")
    worker_env |= {
        "VISIBILITY_TIMEOUT": "3",
        "PROCESSOR": "command",
        "PROCESS_COMMAND": python_command(
            "import os, pathlib, time; time.sleep(5); pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'done').touch()"
        ),
    }

    # WHEN the worker runs, and another receiver polls the queue meanwhile
    worker = start_worker(worker_env)
    wait_until(lambda: server_stack.queue_counts() == (0, 1), "the worker to receive the message", timeout=15)
    stolen = []
    while worker.poll() is None:
        response = server_stack.sqs.receive_message(QueueUrl=server_stack.queue_url, WaitTimeSeconds=1)
        stolen.extend(response.get("Messages", []))
    returncode, lines, stderr = finish(worker)

    # THEN the other receiver never got the message, and the job succeeded and was deleted once
    assert returncode == 0, stderr
    assert stolen == []
    assert server_stack.manifest("incoming/slow.zip")["status"] == "succeeded"
    assert lines[-1]["processed"] == 1
    assert server_stack.queue_counts() == (0, 0)


def test_worker_sigterm_kills_the_processor_tree_and_releases_the_message(
    server_stack: Stack, worker_env: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN a slow command that started a grandchild, and a stop grace of 1 s
    server_stack.upload("incoming/long.zip", zip_bytes({"a.txt": b"a"}))
    server_stack.enqueue("incoming/long.zip")
    pid_file = tmp_path / "pids"
    code = (
        "import os, pathlib, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "pathlib.Path(sys.argv[1]).write_text(f'{os.getpid()} {child.pid}')\n"
        "time.sleep(60)\n"
    )
    worker_env |= {
        "PROCESSOR": "command",
        "PROCESS_COMMAND": shlex.join([sys.executable, "-c", code, str(pid_file)]),
        "STOP_GRACE_SECONDS": "1",
    }
    worker = start_worker(worker_env)
    wait_until(lambda: pid_file.exists() and " " in pid_file.read_text(), "the job to record its pids", timeout=15)
    pids = [int(pid) for pid in pid_file.read_text().split()]

    # WHEN ECS stops the task
    worker.send_signal(signal.SIGTERM)
    returncode, lines, stderr = finish(worker, timeout=15)

    # THEN the worker exits 0, the processor and its grandchild are gone, and the message is visible at once
    assert returncode == 0, stderr
    assert all(gone(pid) for pid in pids)
    assert lines[-1]["stopped_by"] == "signal SIGTERM"
    assert lines[-1]["released"] == 1
    response = server_stack.sqs.receive_message(QueueUrl=server_stack.queue_url, WaitTimeSeconds=0)
    assert len(response.get("Messages", [])) == 1
    with pytest.raises(server_stack.s3.exceptions.NoSuchKey):
        server_stack.manifest("incoming/long.zip")


def test_worker_sigterm_lets_a_job_finish_within_the_grace(
    server_stack: Stack, worker_env: dict[str, str], python_command: Callable[[str], str], tmp_path: Path
) -> None:
    # GIVEN a job of about 2 s and a grace of 20 s
    server_stack.upload("incoming/short.zip", zip_bytes({"a.txt": b"a"}))
    server_stack.enqueue("incoming/short.zip")
    started = tmp_path / "started"
    worker_env |= {
        "PROCESSOR": "command",
        "PROCESS_COMMAND": python_command(
            f"import os, pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(2); "
            "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'done').touch()"
        ),
        "STOP_GRACE_SECONDS": "20",
    }
    worker = start_worker(worker_env)
    wait_until(started.exists, "the job to start", timeout=15)

    # WHEN stopped while the job runs
    worker.send_signal(signal.SIGTERM)
    returncode, lines, stderr = finish(worker)

    # THEN the job finished, its message was deleted, and the worker did not receive again
    assert returncode == 0, stderr
    assert server_stack.manifest("incoming/short.zip")["status"] == "succeeded"
    assert server_stack.queue_counts() == (0, 0)
    assert lines[-1]["processed"] == 1
    assert lines[-1]["stopped_by"] == "signal SIGTERM"


def no_credentials(env: dict[str, str], tmp_path: Path) -> str:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name)
    # No shared files and no instance metadata either: nothing to find anywhere.
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent-credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "absent-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return (
        "no AWS credentials found: on ECS the task role provides them (the task definition's taskRoleArn); "
        "elsewhere set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), "
        "or AWS_PROFILE"
    )


def partial_credentials(env: dict[str, str], tmp_path: Path) -> str:
    env.pop("AWS_SECRET_ACCESS_KEY")
    return "incomplete AWS credentials in env: AWS_SECRET_ACCESS_KEY is missing; set it"


def closed_port(env: dict[str, str], tmp_path: Path) -> str:
    with socket.socket() as sock:  # a port that was free a moment ago, and that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    env |= {"AWS_ENDPOINT_URL": endpoint, "QUEUE_URL": f"{endpoint}/123456789012/lew-work", "DLQ_URL": ""}
    return (
        f"cannot reach {endpoint}/ (EndpointConnectionError): is the server at AWS_ENDPOINT_URL={endpoint} running? "
        "(unset it to use AWS)"
    )


def missing_queue(env: dict[str, str], tmp_path: Path) -> str:
    env["QUEUE_URL"] += "-missing"
    return (
        f"the queue {env['QUEUE_URL']} does not exist in us-east-1 (AWS.SimpleQueueService.NonExistentQueue): "
        "set QUEUE_URL to the work queue's URL (the stack's QueueUrl output) and AWS_REGION to its region"
    )


def wrong_region(env: dict[str, str], tmp_path: Path) -> str:
    env["AWS_REGION"] = "eu-west-1"
    return (
        f"the queue {env['QUEUE_URL']} does not exist in eu-west-1 (AWS.SimpleQueueService.NonExistentQueue): "
        "set QUEUE_URL to the work queue's URL (the stack's QueueUrl output) and AWS_REGION to its region"
    )


@pytest.mark.parametrize(
    ("break_environment", "reason"),
    [
        (no_credentials, "no-credentials"),
        (partial_credentials, "partial-credentials"),
        (closed_port, "unreachable"),
        (missing_queue, "queue-not-found"),
        (wrong_region, "queue-not-found"),
    ],
)
def test_worker_exits_3_with_one_line_when_aws_cannot_be_used(
    worker_env: dict[str, str],
    tmp_path: Path,
    break_environment: Callable[[dict[str, str], Path], str],
    reason: str,
) -> None:
    # GIVEN valid settings in surroundings where the queue cannot be used
    expected = break_environment(worker_env, tmp_path)

    # WHEN the worker starts (its first call is the start-up check of the queue)
    returncode, lines, stderr = finish(start_worker(worker_env), timeout=120)

    # THEN it exits 3 with one line that says what is wrong and what to set: no crash, no traceback
    assert returncode == 3
    line = one_error_line(lines, stderr)
    assert line["message"] == expected
    assert (line["reason"], line["exit_code"]) == (reason, 3)


@contextlib.contextmanager
def sqs_answering(status: int, query_error: str, error_type: str, message: str) -> Iterator[str]:
    """An endpoint that answers every SQS call as SQS's JSON protocol answers an error; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.dumps({"__type": error_type, "message": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("x-amzn-query-error", query_error)  # SQS's query-compatible error code
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads the worker, not this
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("query_error", "error_type", "reason", "start"),
    [
        (
            "AccessDenied;Sender",
            "com.amazon.coral.service#AccessDeniedException",
            "access-denied",
            "AWS denied GetQueueAttributes on {queue} (AccessDenied: Access to the resource is denied)",
        ),
        (
            "InvalidClientTokenId;Sender",
            "com.amazon.coral.service#UnrecognizedClientException",
            "invalid-credentials",
            "AWS does not accept the credentials (InvalidClientTokenId: Access to the resource is denied)",
        ),
        (
            "ExpiredToken;Sender",
            "com.amazon.coral.service#ExpiredTokenException",
            "expired-credentials",
            "the AWS credentials have expired (ExpiredToken)",
        ),
    ],
)
def test_worker_exits_3_with_one_line_when_aws_refuses_it(
    worker_env: dict[str, str], query_error: str, error_type: str, reason: str, start: str
) -> None:
    # GIVEN an SQS endpoint that refuses the worker's credentials or permissions
    with sqs_answering(400, query_error, error_type, "Access to the resource is denied.") as endpoint:
        queue = f"{endpoint}/123456789012/lew-work"
        worker_env |= {"AWS_ENDPOINT_URL": endpoint, "QUEUE_URL": queue, "DLQ_URL": ""}

        # WHEN the worker starts
        returncode, lines, stderr = finish(start_worker(worker_env))

    # THEN it exits 3 with one line naming the refusal, and no traceback
    assert returncode == 3
    line = one_error_line(lines, stderr)
    assert line["message"].startswith(start.format(queue=queue))
    assert (line["reason"], line["exit_code"]) == (reason, 3)


def test_worker_exits_3_when_its_queue_is_deleted_while_it_polls(
    server_stack: Stack, worker_env: dict[str, str]
) -> None:
    # GIVEN a worker that started and polls an empty queue for a long time
    worker_env |= {"IDLE_POLLS": "1000", "WAIT_TIME_SECONDS": "1"}
    worker = start_worker(worker_env)
    assert worker.stdout is not None
    started = json.loads(worker.stdout.readline())
    assert started["message"] == "worker started"

    # WHEN its queue is deleted
    server_stack.sqs.delete_queue(QueueUrl=server_stack.queue_url)
    returncode, lines, stderr = finish(worker)

    # THEN its next receive ends it with the same one line as at start-up
    assert returncode == 3
    line = one_error_line(lines, stderr)
    assert line["reason"] == "queue-not-found"
    assert line["message"].startswith(f"the queue {server_stack.queue_url} does not exist in us-east-1")


def test_worker_exits_1_and_logs_the_crash_of_a_bug(worker_env: dict[str, str], tmp_path: Path) -> None:
    # GIVEN a bug in the loop (planted at interpreter start-up): no fault of the surroundings
    worker_env["PYTHONPATH"] = str(tmp_path)
    (tmp_path / "sitecustomize.py").write_text(
        "import worker.drain\n"
        "def receive(sqs, settings):\n"
        "    raise RuntimeError('a bug in the loop')\n"
        "worker.drain.receive = receive\n"
    )

    # WHEN the worker runs
    returncode, lines, _ = finish(start_worker(worker_env))

    # THEN it is a crash: exit 1 and the traceback, because nobody could have foreseen it
    assert returncode == 1
    crash = lines[-1]
    assert crash["message"] == "worker crashed"
    assert crash["level"] == "ERROR"
    assert "RuntimeError: a bug in the loop" in crash["exception"]
