"""A small fault-injecting HTTP proxy for the fault matrix: it sits between boto3 and the moto server.

Every request is classified into an AWS operation name and forwarded to moto, unless a rule says
otherwise. A rule names an operation, which of its calls it hits (the Nth, or the first N), and a fault:

- ``error(500, "InternalError")``, ``slow_down()`` (S3 503 SlowDown), ``throttling()`` (400 ThrottlingException):
  an error response in the protocol of the call (S3 XML, or the JSON protocol of SQS and ECS);
- ``reset()``: the connection is reset (TCP RST) before the request reaches moto; ``reset(after_forward=True)``
  forwards it first, so that the call took effect but the client never hears of it;
- ``delay(seconds)``: forwards the request, then holds the answer past the client's read timeout;
- ``blackhole(seconds)``: holds the request without forwarding it, then resets the connection (a call that
  never lands: used to freeze a worker just before a chosen write).

How calls are recognised (checked against boto3 1.44, whose SQS client speaks the JSON protocol):

- JSON protocol (SQS, ECS, CloudWatch Logs, ...): the ``X-Amz-Target`` header, ``AmazonSQS.ReceiveMessage``;
- query protocol (STS, ...): the ``Action`` form field;
- S3 (path-style addressing, which botocore uses for an IP endpoint): the method, the path and the query.

Like S3 (and unlike moto), the proxy refuses to create keys longer than 1024 bytes (400 KeyTooLongError).

The proxy listens on 127.0.0.1 only, answers each request with one bounded upstream call, and keeps a log
of what it did, so that a test can assert that its faults really happened.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

# Headers that belong to one hop, not to the request: never forwarded as they are.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)
UPSTREAM_TIMEOUT_SECONDS = 60.0
MAX_BODY_BYTES = 256 * 1024 * 1024  # a test never sends more; a bigger body is a bug in the test
# S3 refuses keys longer than 1024 bytes of UTF-8 with 400 KeyTooLongError; moto does not, so the proxy does.
S3_KEY_LIMIT_BYTES = 1024
S3_KEY_WRITES = frozenset({"PutObject", "CreateMultipartUpload", "CopyObject"})


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or as well as) forwarding one call."""

    kind: str  # "error", "reset", "delay" or "blackhole"
    status: int = 0
    code: str = ""
    after_forward: bool = False
    seconds: float = 0.0

    def describe(self) -> str:
        if self.kind == "error":
            return f"{self.status} {self.code}"
        if self.kind == "reset":
            return "reset after forward" if self.after_forward else "reset"
        if self.kind == "blackhole":
            return f"blackhole {self.seconds:g}s"
        return f"delay {self.seconds:g}s"


def error(status: int = 500, code: str = "InternalError") -> Fault:
    """An error answer with this HTTP status and AWS error code."""
    return Fault("error", status=status, code=code)


def slow_down() -> Fault:
    """S3's 503 SlowDown."""
    return error(503, "SlowDown")


def throttling() -> Fault:
    """A 400 ThrottlingException, as SQS and ECS send when their request rate is exceeded."""
    return error(400, "ThrottlingException")


def reset(*, after_forward: bool = False) -> Fault:
    """Reset the client's connection; with after_forward, only once moto has carried out the call."""
    return Fault("reset", after_forward=after_forward)


def delay(seconds: float) -> Fault:
    """Carry out the call, then hold the answer for this long (longer than the client's read timeout)."""
    return Fault("delay", seconds=seconds)


def blackhole(seconds: float) -> Fault:
    """Hold the call for this long without carrying it out, then reset the connection."""
    return Fault("blackhole", seconds=seconds)


@dataclass
class Rule:
    """Apply ``fault`` to calls of ``operation``: the ``nth`` one (1-based), or every one up to ``times``.

    With ``path_contains``, only calls whose (URL-encoded) request path contains it count, and they are
    numbered among themselves: ``Rule("PutObject", delay(30), nth=1, path_contains="manifest.json")``.
    """

    operation: str
    fault: Fault
    nth: int | None = None
    times: int | None = None
    path_contains: str = ""
    hits: int = 0
    seen: int = 0

    def matches(self, operation: str, call_number: int, path: str = "") -> bool:
        if operation != self.operation:
            return False
        if self.path_contains:
            if self.path_contains not in path:
                return False
            self.seen += 1
            call_number = self.seen
        if self.nth is not None:
            return call_number == self.nth
        return self.times is None or call_number <= self.times


@dataclass(frozen=True)
class Call:
    """One request seen by the proxy: its operation, its number among calls of that operation, what was done."""

    operation: str
    number: int
    action: str  # "forwarded" or a Fault.describe()


def classify(method: str, target: str, headers: dict[str, str], body: bytes) -> str:
    """The AWS operation a request calls, e.g. ``ReceiveMessage`` or ``PutObject``; ``Unknown`` if unsure."""
    amz_target = headers.get("x-amz-target", "")
    if amz_target:
        return amz_target.rsplit(".", 1)[-1]
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded") and method == "POST":
        action = parse_qs(body.decode("latin-1")).get("Action")
        if action:
            return action[0]
    return classify_s3(method, target, headers)


# S3 object-level operations, told apart by the method and the first query parameter or header that decides.
S3_OBJECT_OPERATIONS: list[tuple[str, str, str]] = [
    # (method, marker: "?param" in the query or "header" present, operation)
    ("PUT", "?partNumber", "UploadPart"),
    ("PUT", "x-amz-copy-source", "CopyObject"),
    ("PUT", "?tagging", "PutObjectTagging"),
    ("PUT", "", "PutObject"),
    ("POST", "?uploads", "CreateMultipartUpload"),
    ("POST", "?uploadId", "CompleteMultipartUpload"),
    ("DELETE", "?uploadId", "AbortMultipartUpload"),
    ("DELETE", "", "DeleteObject"),
    ("GET", "", "GetObject"),
    ("HEAD", "", "HeadObject"),
]
S3_BUCKET_OPERATIONS: list[tuple[str, str, str]] = [
    ("POST", "?delete", "DeleteObjects"),
    ("GET", "?list-type", "ListObjectsV2"),
    ("GET", "?notification", "GetBucketNotificationConfiguration"),
    ("PUT", "?notification", "PutBucketNotificationConfiguration"),
    ("GET", "?versioning", "GetBucketVersioning"),
    ("PUT", "?versioning", "PutBucketVersioning"),
    ("GET", "", "ListObjects"),
    ("HEAD", "", "HeadBucket"),
    ("PUT", "", "CreateBucket"),
    ("DELETE", "", "DeleteBucket"),
]


def classify_s3(method: str, target: str, headers: dict[str, str]) -> str:
    """The S3 operation of a path-style request."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    bucket, _, key = parts.path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else "Unknown"
    table = S3_OBJECT_OPERATIONS if key else S3_BUCKET_OPERATIONS
    for row_method, marker, operation in table:
        present = marker == "" or (marker[1:] in query if marker.startswith("?") else marker in headers)
        if row_method == method and present:
            return operation
    return "Unknown"


def error_body(operation_is_json: bool, fault: Fault) -> tuple[bytes, str]:
    """The body of an error answer, in the protocol of the call."""
    message = f"injected by the fault proxy: {fault.describe()}"
    if operation_is_json:
        document = {"__type": f"com.amazonaws.injected#{fault.code}", "message": message}
        return json.dumps(document).encode(), "application/x-amz-json-1.0"
    xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{fault.code}</Code><Message>{message}</Message></Error>"
    return xml.encode(), "application/xml"


class FaultProxy:
    """The proxy: ``with FaultProxy(upstream) as proxy: ... proxy.add(Rule(...)) ... proxy.endpoint``."""

    def __init__(self, upstream: str, *, s3_key_limit: int | None = S3_KEY_LIMIT_BYTES) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            raise ValueError(f"the fault proxy only forwards to a local server, not to {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.s3_key_limit = s3_key_limit
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._counts: dict[str, int] = {}
        self.calls: list[Call] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add(self, rule: Rule) -> Rule:
        """Add a rule; the first rule that matches a call decides its fault."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def decide(self, operation: str, path: str = "") -> tuple[int, Fault | None]:
        """Count the call and pick its fault (None: forward it)."""
        with self._lock:
            number = self._counts.get(operation, 0) + 1
            self._counts[operation] = number
            for rule in self._rules:
                if rule.matches(operation, number, path):
                    rule.hits += 1
                    return number, rule.fault
            return number, None

    def key_too_long(self, target: str) -> bool:
        """True when a path-style S3 request names a key longer than S3 accepts."""
        if self.s3_key_limit is None:
            return False
        _, _, raw_key = urlsplit(target).path.lstrip("/").partition("/")
        return len(unquote(raw_key).encode("utf-8")) > self.s3_key_limit

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def count(self, operation: str) -> int:
        """How many calls of this operation the proxy has seen."""
        with self._lock:
            return self._counts.get(operation, 0)

    def injected(self, operation: str | None = None) -> list[Call]:
        """The calls that got a fault (of one operation, or of all)."""
        with self._lock:
            return [c for c in self.calls if c.action != "forwarded" and operation in (None, c.operation)]


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue handled by the base class

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the proxy's own log is ``proxy.calls``."""

        def do_GET(self) -> None:
            self.relay()

        def do_PUT(self) -> None:
            self.relay()

        def do_POST(self) -> None:
            self.relay()

        def do_DELETE(self) -> None:
            self.relay()

        def do_HEAD(self) -> None:
            self.relay()

        def read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                total = 0
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers: botocore's checksums travel in the aws-chunked body instead
                        break
                    total += size
                    if total > MAX_BODY_BYTES:
                        raise ValueError("request body too large for the fault proxy")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ValueError("request body too large for the fault proxy")
            return self.rfile.read(length) if length else b""

        def relay(self) -> None:
            body = self.read_body()
            headers = {name.lower(): value for name, value in self.headers.items()}
            operation = classify(self.command, self.path, headers, body)
            number, fault = proxy.decide(operation, self.path)
            if fault is None and operation in S3_KEY_WRITES and proxy.key_too_long(self.path):
                fault = error(400, "KeyTooLongError")
            proxy.record(Call(operation, number, fault.describe() if fault else "forwarded"))
            if fault is not None and fault.kind == "error":
                self.send_error_answer("x-amz-target" in headers, fault)
                return
            if fault is not None and fault.kind == "blackhole":
                time.sleep(fault.seconds)
                self.reset_connection()
                return
            if fault is not None and fault.kind == "reset" and not fault.after_forward:
                self.reset_connection()
                return
            status, reason, answer_headers, answer = self.forward(body)
            if fault is not None and fault.kind == "reset":
                self.reset_connection()
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
            self.answer(status, reason, answer_headers, answer)

        def forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(
                proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT_SECONDS
            )
            try:
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        connection.putheader(name, value)
                connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body)
                response = connection.getresponse()
                answer = response.read()
                return response.status, response.reason, response.getheaders(), answer
            finally:
                connection.close()

        def answer(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> None:
            try:
                self.send_response(status, reason)
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                if self.command == "HEAD":
                    length = {k.lower(): v for k, v in headers}.get("content-length", "0")
                    self.send_header("Content-Length", length)
                    self.end_headers()
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (read timeout): nothing more to say

        def send_error_answer(self, is_json: bool, fault: Fault) -> None:
            body, content_type = error_body(is_json, fault)
            headers = [("Content-Type", content_type)]
            if is_json:
                # SQS's JSON protocol also carries the query-compatible code in this header.
                headers.append(("x-amzn-query-error", f"{fault.code};Sender"))
            self.answer(fault.status, "Injected", headers, body)

        def reset_connection(self) -> None:
            # SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

    return Handler


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A started proxy in front of ``upstream`` (a local moto server), stopped on exit."""
    with FaultProxy(upstream) as proxy:
        yield proxy
