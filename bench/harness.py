"""The measuring tools every benchmark shares: a moto server that logs each request, child processes measured
with wait4, interleaved runs, medians, and the description of the machine."""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import psutil
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from bench.events import REGION

REPO_ROOT = Path(__file__).resolve().parent.parent
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Variables that could point a child at a real account or change its behaviour behind our back.
SCRUBBED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_DEFAULT_PROFILE",
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered: the AWS operation, its HTTP status, and when the answer was ready."""

    operation: str
    status: int
    started: float  # time.perf_counter() in the bench process, when the server began the request
    finished: float  # and when its answer was ready

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def operation_of(environ: Mapping[str, Any]) -> str:  # noqa: PLR0911 - one return per kind of request
    """The AWS operation of a request, as `service:Operation` (S3's REST calls are told apart by method and query)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, name = target.partition(".")
        service = "sqs" if prefix.startswith("AmazonSQS") else "ecs" if "EC2ContainerService" in prefix else prefix
        return f"{service}:{name}"
    method = environ.get("REQUEST_METHOD", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    path_parts = [part for part in environ.get("PATH_INFO", "").split("/") if part]
    has_key = len(path_parts) > 1
    if "Action" in query:
        return f"query:{query['Action'][0]}"
    if method == "PUT" and "partNumber" in query:
        return "s3:UploadPart"
    if method == "POST" and "uploads" in query:
        return "s3:CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "s3:CompleteMultipartUpload"
    if method == "POST" and "delete" in query:
        return "s3:DeleteObjects"
    names = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
    if has_key and method in names:
        return f"s3:{names[method]}"
    return f"s3:{method} bucket"


@dataclass
class RequestLog:
    """Every request the moto server answered, in order (appends are atomic under the GIL)."""

    records: list[RequestRecord] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.records)

    def since(self, mark: int) -> list[RequestRecord]:
        return self.records[mark:]

    def wrap(self, app: WSGIApp) -> WSGIApp:
        def recording_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            status: list[int] = []

            def recording_start_response(code: str, headers: Any, *args: Any) -> Any:
                status.append(int(code.split(" ", 1)[0]))
                return start_response(code, headers, *args)

            operation = operation_of(environ)
            started = time.perf_counter()
            body = app(environ, recording_start_response)
            self.records.append(RequestRecord(operation, status[0] if status else 0, started, time.perf_counter()))
            return body

        return recording_app


class RecordingMotoServer(ThreadedMotoServer):
    """moto's threaded server with every request logged, so that a run's end is read from the server itself."""

    def __init__(self, port: int) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.log = RequestLog()
        self.endpoint = f"http://127.0.0.1:{port}"

    def _server_entry(self) -> None:
        app = self.log.wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def moto_server() -> Iterator[RecordingMotoServer]:
    """A recording moto server on a free loopback port, for the length of the block."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request would drown the results
    server = RecordingMotoServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def use_fake_credentials() -> None:
    """Fake credentials and a fixed region for this process, so that nothing can reach a real account."""
    for name in SCRUBBED_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ["AWS_REGION"] = REGION


def child_env(endpoint: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured child: fake credentials, the local endpoint, and `extra`."""
    env = {name: value for name, value in os.environ.items() if name not in SCRUBBED_VARIABLES}
    env.pop("AWS_ENDPOINT_URL", None)
    env |= FAKE_CREDENTIALS | {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint}
    # launcher/ is the root of the Lambda bundle, where Lambda finds lew_launcher; the repository root holds the rest.
    pythonpath = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "launcher")])
    env |= {"PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "0"}
    return env | dict(extra or {})


def clients(endpoint: str) -> dict[str, Any]:
    """boto3 clients for the bench's own set-up calls (never measured)."""
    config = Config(region_name=REGION, retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=20)
    return {name: boto3.client(name, endpoint_url=endpoint, config=config) for name in ("s3", "sqs", "ecs", "ec2")}


@dataclass(frozen=True)
class ChildResult:
    """A finished child process: exit code, wall time, peak RSS, and when it was started."""

    returncode: int
    seconds: float
    max_rss_bytes: int
    started: float  # time.perf_counter() just before the fork
    log_path: Path


class ChildFailedError(RuntimeError):
    """A measured child exited non-zero or timed out; the message names it and the tail of its output."""


class PeakRss:
    """Follows a process's VmHWM (the kernel's own high-water mark of its resident set) until it exits.

    wait4's ru_maxrss cannot be used: Linux carries the parent's resident set, copied at fork, across exec,
    so a child of the bench process (which holds the moto server's data) would report the bench's size.
    VmHWM belongs to the new program's address space, and reading it often loses at most the last interval.
    """

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                status = self.path.read_text(encoding="ascii", errors="replace")
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            self._stop.wait(self.interval)

    def stop(self) -> int:
        """Stop following; the peak in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak_kib * 1024


def run_child(
    argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, timeout: float, cwd: Path = REPO_ROOT
) -> ChildResult:
    """Run a child to completion, following its peak RSS; raise ChildFailedError when it fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        peak = PeakRss(process.pid)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
        seconds = time.perf_counter() - started
        max_rss = peak.stop()
    result = ChildResult(returncode, seconds, max_rss, started, log_path)
    if returncode != 0:
        raise ChildFailedError(
            f"{' '.join(argv[:4])} exited with {returncode} after {seconds:.1f} s "
            f"(timeout {timeout:.0f} s); last output:\n{tail(log_path)}"
        )
    return result


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def interleave(
    first: Callable[[int], float], second: Callable[[int], float], reps: int
) -> tuple[list[float], list[float]]:
    """Run A B A B … `reps` times each, so that drift in the machine's speed hits both alike."""
    a_times: list[float] = []
    b_times: list[float] = []
    for rep in range(reps):
        a_times.append(first(rep))
        b_times.append(second(rep))
    return a_times, b_times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile, interpolated between the nearest ranks (numpy's default method)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def operation_counts(records: Iterable[RequestRecord]) -> Counter[str]:
    return Counter(record.operation for record in records)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, str]:
    """What the figures were measured on."""

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "CPU": f"{cpu_model()} ({os.cpu_count()} logical cores)",
        "Memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "boto3 / botocore": f"{version('boto3')} / {version('botocore')}",
        "moto": version("moto"),
        "aws-lambda-powertools": version("aws-lambda-powertools"),
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def python() -> str:
    return sys.executable


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
