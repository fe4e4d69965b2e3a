"""The whole pipeline on one machine: moto server + resources + local Lambda runtime + local ECS agent."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TextIO

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from lew.clients import ServiceClients
from lew.errors import LewError
from lew.local.chaos import StartFailureInjector
from lew.local.ecs_agent import LocalEcsAgent
from lew.local.lambda_runtime import Handler, JobSchedule, LocalLambdaRuntime, load_launcher_handler
from lew.local.output import LogSink, ThreadRoutedStdout, prefixed_stream_sink
from lew.local.preflight import inherited_environment, platform_environment
from lew.local.resources import LocalResources, create_resources
from lew.local.settings import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalSettings
from lew.local.task_state import EventBridgePublisher, MotoTaskNotes, create_task_stopped_rule, resolved_pattern
from lew.queues import queue_depths
from lew.schedule import LOCAL_SCHEDULE_ARN, rate_seconds, scheduled_time_text
from lew.state import LocalState
from lew_launcher.schedule import schedule_event

LAUNCHER_FUNCTION_NAME = "lew-local-launcher"
TASKS_STAY_RUNNING = {"progression": "manual", "times": 10**9}


class LocalStack(ServiceClients):
    """Start with `with LocalStack(settings) as stack:`; leaving the block stops everything it started."""

    def __init__(self, settings: LocalSettings, *, sink: LogSink | None = None, handler: Handler | None = None) -> None:
        self.settings = settings
        self._sink = sink or prefixed_stream_sink()
        self._handler = handler
        self._server: ThreadedMotoServer | None = None
        self._saved_environment: dict[str, str] | None = None
        self._saved_streams: tuple[TextIO, TextIO] | None = None
        self._routers: tuple[ThreadRoutedStdout, ThreadRoutedStdout] | None = None
        self.endpoint = ""
        self.port = 0
        self._clients: dict[str, Any] = {}
        self.resources: LocalResources | None = None
        self.runtime: LocalLambdaRuntime | None = None
        self.agent: LocalEcsAgent | None = None
        # The first configuration error of the launcher or a worker: nothing will work until the settings change.
        self.configuration_error: str | None = None
        self.failed = threading.Event()

    # -- clients ------------------------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client for this stack's endpoint (explicit, so it never depends on the environment)."""
        if service not in self._clients:
            session = boto3.session.Session(
                aws_access_key_id=FAKE_ACCESS_KEY,
                aws_secret_access_key=FAKE_SECRET_KEY,
                region_name=self.settings.region,
            )
            self._clients[service] = session.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]
        return self._clients[service]

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start the server, create the resources, then the Lambda runtime and the ECS agent."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request would drown the real logs
        self._server = _BoundMotoServer(ip_address="127.0.0.1", port=self.settings.port, verbose=False)
        self._server.start()
        host, self.port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{self.port}"
        # moto's state is process-wide: start from nothing, whatever ran in this process before.
        self._moto_api("reset", None)
        # moto moves a task's lastStatus forward on every DescribeTasks, so a task would look STOPPED to the
        # launcher a moment after it started. On ECS the agent reports the state; here the local ECS agent does:
        # tasks stay RUNNING until it stops them.
        self._moto_api("state-manager/set-transition", {"model_name": "ecs::task", "transition": TASKS_STAY_RUNNING})

        self._saved_environment = dict(os.environ)
        inherited = inherited_environment(os.environ)
        platform = platform_environment(self.endpoint, self.settings.region)
        self._replace_environment({**inherited, **platform})

        self.resources = create_resources(
            self.settings, s3=self.s3, sqs=self.sqs, ecs=self.ecs, ec2=self.client("ec2"), events=self.client("events")
        )
        # The launcher runs in this process and reads os.environ on each invocation, as in Lambda.
        os.environ.update(
            {
                "POWERTOOLS_SERVICE_NAME": "lew-launcher",
                "POWERTOOLS_METRICS_NAMESPACE": "lew-local",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "AWS_LAMBDA_FUNCTION_NAME": LAUNCHER_FUNCTION_NAME,
                **self.resources.launcher_environment,
            }
        )
        self._route_launcher_output()
        handler = self._handler or _import_launcher()
        self._create_task_stopped_rule()
        failures = self.settings.task_start_failures

        self.agent = LocalEcsAgent(
            ecs=self.ecs,
            cluster=self.resources.cluster,
            sink=self._sink,
            command=self.settings.worker_command,
            cwd=self.settings.worker_cwd,
            inherited_environment=inherited,
            platform_environment={
                **platform,
                "POWERTOOLS_SERVICE_NAME": "lew-worker",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(self.settings.worker_cwd), inherited.get("PYTHONPATH")])
                ),
                "PYTHONUNBUFFERED": "1",  # lines reach `lew local up` as they are written
            },
            kill_grace_seconds=self.settings.worker_kill_grace_seconds,
            on_configuration_error=self._configuration_failed,
            start_failures=StartFailureInjector(failures) if failures is not None else None,
            task_notes=MotoTaskNotes(self.settings.account_id, self.settings.region, self.resources.cluster),
            publish_event=EventBridgePublisher(self.client("events")),
            region=self.settings.region,
            account_id=self.settings.account_id,
        )
        self.runtime = LocalLambdaRuntime(
            sqs=self.sqs,
            inbox_url=self.resources.inbox_url,
            failure_url=self.resources.launcher_failure_url,
            handler=handler,
            sink=self._sink,
            function_name=LAUNCHER_FUNCTION_NAME,
            region=self.settings.region,
            account_id=self.settings.account_id,
            reconcile_seconds=self.settings.reconcile_seconds,
            retry_delays=self.settings.lambda_retry_delays,
            on_thread_start=self._route_this_thread,
            on_configuration_error=self._configuration_failed,
            job_schedule=self._job_schedule(self.resources.bucket),
        )
        self.agent.start()
        self.runtime.start()

    def stop(self) -> None:
        """Stop the runtime, then the workers (SIGTERM, grace, SIGKILL), then the server; restore the process."""
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        if self.agent is not None:
            self.agent.stop()
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._moto_api("state-manager/unset-transition", {"model_name": "ecs::task"})
            with contextlib.suppress(Exception):
                self._server.stop()
            inner = getattr(self._server, "_server", None)
            if inner is not None:
                inner.server_close()  # shutdown() alone leaves the listening socket bound
            self._server = None
            self._clients.clear()
        if self._saved_streams is not None and self._routers is not None:
            if sys.stdout is self._routers[0]:
                sys.stdout = self._saved_streams[0]
            if sys.stderr is self._routers[1]:
                sys.stderr = self._saved_streams[1]
            self._saved_streams = self._routers = None
        if self._saved_environment is not None:
            self._replace_environment(self._saved_environment)
            self._saved_environment = None

    # -- helpers ------------------------------------------------------------------------------------------------

    def _job_schedule(self, bucket: str) -> JobSchedule | None:
        """The template's scheduled job, when ScheduleExpression is a rate(); a cron() or at() is fired on demand."""
        expression = self.settings.parameters.get("ScheduleExpression", "")
        key = self.settings.parameters.get("ScheduleObjectKey", "")
        if not expression or not key:
            return None
        period = rate_seconds(expression)
        if period is None:
            self._sink(
                "lambda",
                f"ScheduleExpression {expression} is not run by the local stack's clock (only rate() is): "
                "start a run with `lew schedule fire`",
            )
            return None
        self._sink(
            "lambda",
            f"scheduled job: s3://{bucket}/{key} every {period:g} s ({expression}); `lew schedule fire` runs it now",
        )
        return JobSchedule(
            # Whole seconds, as Scheduler's ticks: the run ids and LEW_SCHEDULED_TIME look like a deployed stack's.
            period,
            lambda moment: schedule_event(
                bucket, key, scheduled_time_text(moment.replace(microsecond=0)), LOCAL_SCHEDULE_ARN
            ),
        )

    def _configuration_failed(self, line: str) -> None:
        """Keep the first configuration error and raise `failed`, so that whoever runs the stack stops at once."""
        if self.configuration_error is None:
            self.configuration_error = line
            self._sink("lew", line)
        self.failed.set()

    def _create_task_stopped_rule(self) -> None:
        """The template's rule for tasks that stopped without running, sending their events to the launcher."""
        assert self.resources is not None  # noqa: S101  # called after the resources exist
        (cluster,) = self.ecs.describe_clusters(clusters=[self.resources.cluster])["clusters"]
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": self.settings.region,
            "AWS::AccountId": self.settings.account_id,
            "AWS::StackName": self.settings.stack_name,
        }
        pattern = resolved_pattern(self.settings.template, cluster_arn=cluster["clusterArn"], pseudo=pseudo)
        if pattern is not None:
            create_task_stopped_rule(
                self.client("events"),
                self.sqs,
                name=f"{self.settings.stack_name}-task-start-failure",
                pattern=pattern,
                inbox_url=self.resources.inbox_url,
            )

    def _moto_api(self, path: str, body: dict[str, Any] | None) -> None:
        """Call moto's own control API on our server (plain http on 127.0.0.1)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310  # our own http://127.0.0.1 URL
            f"{self.endpoint}/moto-api/{path}", data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    @staticmethod
    def _replace_environment(environment: dict[str, str]) -> None:
        for name in list(os.environ):
            if name not in environment:
                del os.environ[name]
        os.environ.update(environment)

    def _route_launcher_output(self) -> None:
        """Send what the in-process launcher prints to the stack's log, not to the terminal.

        stdout carries its JSON logs and EMF metrics; stderr the warnings of the libraries it uses (rare: Powertools'
        "No application metrics to publish" is filtered in lew_launcher.observability). On Lambda both go to
        CloudWatch Logs; here, to the log sink.
        """
        self._saved_streams = (sys.stdout, sys.stderr)
        self._routers = (ThreadRoutedStdout(sys.stdout), ThreadRoutedStdout(sys.stderr))
        sys.stdout, sys.stderr = self._routers  # TextIOBases that route by thread

    def _route_this_thread(self) -> None:
        if self._routers is not None and self.runtime is not None:
            stdout, stderr = self._routers
            stdout.route_current_thread(self.runtime.capture_line)  # kept with its invocation, or dropped if quiet
            stderr.route_current_thread(lambda line: self._sink("launcher", line))  # rare, and always worth keeping

    # -- observations -------------------------------------------------------------------------------------------

    def state(self) -> LocalState:
        """Where this running stack is and what it is made of: what `lew local up` writes for other commands."""
        if self.resources is None:
            raise LewError("the local stack is not running")
        return LocalState(
            endpoint=self.endpoint,
            region=self.settings.region,
            bucket=self.resources.bucket,
            queue_url=self.resources.queue_url,
            dlq_url=self.resources.dlq_url,
            cluster=self.resources.cluster,
            task_family=self.resources.task_family,
            input_prefix=self.settings.parameter("InputPrefix"),
            result_prefix=self.settings.parameter("ResultPrefix"),
            suffixes=self.settings.parameter("Suffixes"),
            pid=os.getpid(),
            event_bus=self.resources.event_bus,
            events_queue_url=self.resources.events_queue_url,
            inbox_url=self.resources.inbox_url,
            schedule_key=self.settings.parameters.get("ScheduleObjectKey", ""),
            processor=self.settings.processor,
            process_parameters=self.settings.parameters.get("ProcessParameters", ""),
        )

    def queue_counts(self) -> dict[str, int]:
        """Work queue depth and in-flight count, and the DLQ depth."""
        assert self.resources is not None, "start() first"  # noqa: S101  # a programming error, not user input
        queued, in_flight = queue_depths(self.sqs, self.resources.queue_url)
        return {"queued": queued, "in_flight": in_flight, "dead": queue_depths(self.sqs, self.resources.dlq_url)[0]}


class _BoundMotoServer(ThreadedMotoServer):
    """moto's threaded server, but bound in the caller's thread, so that a port in use is an error, not a hang.

    moto binds inside its server thread and waits for a ready event that a failed bind never sets; werkzeug, asked
    to bind, prints its own message and exits the process. So the socket is bound here and handed over.
    """

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # A restart on the same port must not wait for the last stack's connections to leave TIME_WAIT.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._ip_address, self._port))
            listener.listen(128)
            self._server = make_server(
                self._ip_address,
                self._port,
                DomainDispatcherApplication(create_backend_app),
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=listener.fileno(),  # werkzeug duplicates it
            )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(self._port) from None
            raise LewError(f"cannot listen on {self._ip_address}:{self._port}: {error.strerror or error}") from None
        finally:
            listener.close()
        self._server_ready_event.set()
        self._thread = threading.Thread(target=self._server.serve_forever, name="lew-moto-server", daemon=True)
        self._thread.start()


class PortInUseError(LewError):
    """The port asked for is taken by another program."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} is in use by another program: choose another --port, or 0 for any free port")
        self.port = port


def _import_launcher() -> Handler:
    try:
        return load_launcher_handler()
    except ImportError as error:
        raise LewError(f"the launcher cannot be imported (launcher/lew_launcher): {error}") from None


@contextlib.contextmanager
def running_stack(settings: LocalSettings, *, sink: LogSink | None = None) -> Iterator[LocalStack]:
    """A started stack for the length of a `with` block."""
    with LocalStack(settings, sink=sink) as stack:
        yield stack
