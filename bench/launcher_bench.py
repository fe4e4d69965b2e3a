"""Benchmarks 4-6: the launcher's cold start, its latency per invocation, and how many tasks a burst starts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.moto_api import state_manager

from bench.context import Context, unique
from bench.harness import REPO_ROOT, RequestRecord, child_env, interleave, median, operation_counts, python, run_child
from bench.profiles import importtime_children
from bench.report import Row, Section

COLD_START_TARGET = 1.3
BURST_TARGET = 10
IMPORT_TIMER = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
# What a cold start runs before the handler's own work: the import Lambda does at init, then the first
# invocation's tracing decision (the launcher creates Powertools' Tracer, and imports the X-Ray SDK, only then).
LAUNCHER_COLD_START = "import lew_launcher.app; from lew_launcher.observability import tracer; tracer.get()"
# Lambda's own variables, as the template sets them by default (Tracing=Disabled).
LAMBDA_LIKE = {
    "AWS_LAMBDA_FUNCTION_NAME": "lew-launcher",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "LAMBDA_TASK_ROOT": str(REPO_ROOT / "launcher"),
    "POWERTOOLS_SERVICE_NAME": "lew-launcher",
    "POWERTOOLS_METRICS_NAMESPACE": "lew-bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
# With Tracing=Active: the same cold start, Tracer and X-Ray SDK included (reported, no target).
TRACING_ACTIVE = {"POWERTOOLS_TRACE_DISABLED": "false"}


def timed_import(statement: str, env: dict[str, str]) -> float:
    """Seconds an import statement takes in a fresh interpreter, measured inside it (start-up excluded)."""
    result = subprocess.run(
        [python(), "-c", IMPORT_TIMER.format(statement=statement)],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return float(result.stdout.strip().splitlines()[-1])


def importtime_report(statement: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [python(), "-X", "importtime", "-c", statement],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stderr


def cold_start(ctx: Context) -> list[Row]:
    """#4: the launcher's import and first tracing decision against `import boto3` alone, fresh interpreters."""
    reps = 3 if ctx.smoke else 21
    env = child_env(ctx.server.endpoint, LAMBDA_LIKE)
    traced_env = env | TRACING_ACTIVE
    warm_up = ((LAUNCHER_COLD_START, env), ("import boto3", env), (LAUNCHER_COLD_START, traced_env))
    for statement, statement_env in warm_up:
        timed_import(statement, statement_env)  # warm the OS file cache and the .pyc files, unmeasured
    traced: list[float] = []

    def launcher_and_traced(_: int) -> float:
        seconds = timed_import(LAUNCHER_COLD_START, env)
        traced.append(timed_import(LAUNCHER_COLD_START, traced_env))
        return seconds

    app_times, boto3_times = interleave(launcher_and_traced, lambda _: timed_import("import boto3", env), reps)
    app_s, boto3_s, traced_s = median(app_times), median(boto3_times), median(traced)
    ratio = app_s / boto3_s
    children = importtime_children(importtime_report(LAUNCHER_COLD_START, env), "lew_launcher")
    body = [
        f"{reps} fresh interpreters of each, interleaved; the time is taken inside the interpreter "
        "(`time.perf_counter()` around the statement), so interpreter start-up, the same for both, is left out. "
        f"The launcher's statement is `{LAUNCHER_COLD_START}`: the import Lambda does at init, then what the "
        "first invocation adds before its own work (the tracing decision). The environment is Lambda's as the "
        "template sets it by default: `LAMBDA_TASK_ROOT`, `AWS_LAMBDA_FUNCTION_NAME` and, with the template's "
        "`Tracing=Disabled`, `POWERTOOLS_TRACE_DISABLED=true`.",
        "",
        f"lew_launcher: median {app_s * 1000:.0f} ms; boto3 alone: median {boto3_s * 1000:.0f} ms.",
        "",
        "The slowest imports made directly by the launcher's modules (`python -X importtime`, one run; a module's "
        "cumulative time includes what it imports first, and a module's self time includes the code it runs "
        "at import):",
        "",
        "| module | cumulative ms | self ms |",
        "|---|---|---|",
        *[f"| {name} | {cumulative:.0f} | {self_ms:.1f} |" for name, cumulative, self_ms in children],
        "",
        f"With `Tracing=Active` (`POWERTOOLS_TRACE_DISABLED=false`) the same statement takes a median "
        f"{traced_s * 1000:.0f} ms, {traced_s / boto3_s:.2f}× boto3 (interleaved with the runs above): the first "
        "invocation creates Powertools' `Tracer`, which imports the X-Ray SDK and patches botocore and every other "
        "library the SDK can patch. That is the price of tracing, paid only where it is on. (Outside Lambda, without "
        "`LAMBDA_TASK_ROOT`, the SDK's recorder also builds botocore X-Ray clients for its sampler at import, even "
        "with tracing disabled: the 1.76× this row showed before the Tracer became lazy was measured that way.)",
    ]
    ctx.sections.append(Section("4. Launcher cold start", body))
    return [
        Row(
            "4",
            "Launcher cold start (import lew_launcher.app, Tracing off)",
            f"{app_s * 1000:.0f} ms",
            f"import boto3 {boto3_s * 1000:.0f} ms",
            ratio,
            f"≤ {COLD_START_TARGET}×",
            ratio <= COLD_START_TARGET,
        )
    ]


@contextmanager
def tasks_stay_running() -> Iterator[None]:
    """moto stops a task the first time it is described; a real Fargate task runs until its worker exits."""
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    try:
        yield
    finally:
        state_manager.unset_transition(model_name="ecs::task")


def launcher_resources(ctx: Context, max_workers: int) -> tuple[str, dict[str, str]]:
    """A bucket, queue, cluster, task definition and network for the launcher; returns the bucket and its env."""
    bucket, queue, cluster = unique("bench-launcher"), unique("bench-launcher"), unique("bench-launcher")
    ctx.s3.create_bucket(Bucket=bucket)
    queue_url = ctx.sqs.create_queue(QueueName=queue)["QueueUrl"]
    ctx.ecs.create_cluster(clusterName=cluster)
    family = f"{cluster}-worker"
    ctx.ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": "worker", "image": "lew-worker:bench", "memory": 2048, "essential": True}],
    )
    subnet = ctx.ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    group = ctx.ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][
        0
    ]
    env = child_env(
        ctx.server.endpoint,
        {
            "QUEUE_URL": queue_url,
            "CLUSTER": cluster,
            "TASK_DEFINITION": family,
            "CONTAINER_NAME": "worker",
            "SUBNETS": subnet["SubnetId"],
            "SECURITY_GROUPS": group["GroupId"],
            "MAX_WORKERS": str(max_workers),
            "MESSAGES_PER_WORKER": "5",
            "POWERTOOLS_SERVICE_NAME": "lew-launcher",
            "POWERTOOLS_METRICS_NAMESPACE": "lew-bench",
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
    )
    return bucket, env


def probe(ctx: Context, args: list[str], env: dict[str, str], label: str) -> tuple[dict[str, Any], list[RequestRecord]]:
    """Run the launcher probe; return its figures and the requests the server saw."""
    out = ctx.workdir / "logs" / f"{unique(label)}.json"
    mark = ctx.server.log.mark()
    run_child([python(), "-m", "bench.launcher_probe", *args, "--out", str(out)], env=env,
              log_path=out.with_suffix(".log"), timeout=1200)  # fmt: skip
    figures: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return figures, ctx.server.log.since(mark)


def per_invocation(ctx: Context) -> list[Row]:
    """#5: handler latency for a 1-record and a 100-record event, warm, in a process of its own."""
    rows = []
    body = [
        "The real handler, called in a fresh process of its own (`bench/launcher_probe.py`) with a fake Lambda "
        "context, against the moto server; MAX_WORKERS=10, so after the first calls the workers are all running "
        "and an invocation enqueues, reads the queue depth, lists and describes the tasks, and starts none. "
        "The first invocation (which creates the clients) is reported apart; the figure is the median of the "
        "warm ones. Each invocation gets an empty queue of its own (created untimed): moto's "
        "SendMessageBatch and GetQueueAttributes slow down as its queue grows, which real SQS does not.",
        "",
    ]
    with tasks_stay_running():
        for records, repeat in ((1, 5 if ctx.smoke else 40), (100, 3 if ctx.smoke else 15)):
            bucket, env = launcher_resources(ctx, max_workers=10)
            args = ["latency", "--bucket", bucket, "--records", str(records), "--repeat", str(repeat)]
            figures, records_seen = probe(ctx, args, env, f"latency-{records}")
            durations = figures["durations"]
            warm = median(durations[1:])
            server_ms = sum(record.seconds for record in records_seen) / repeat * 1000
            requests = operation_counts(records_seen)
            body.append(
                f"- {records}-record event: first call {durations[0] * 1000:.0f} ms, warm median {warm * 1000:.1f} ms "
                f"over {len(durations) - 1} calls, of which the moto server itself spent {server_ms:.1f} ms on average "
                "answering; requests per invocation: "
                + ", ".join(f"{name} {count / repeat:.1f}" for name, count in sorted(requests.items()))
            )
            rows.append(
                Row(
                    f"5{'ab'[records > 1]}",
                    f"Launcher latency, {records}-record event",
                    f"{warm * 1000:.1f} ms warm",
                    f"first call {durations[0] * 1000:.0f} ms",
                    None,
                    "report",
                    None,
                )
            )
    ctx.sections.append(Section("5. Launcher per invocation", body))
    return rows


def burst(ctx: Context) -> list[Row]:
    """#6: RunTask calls and tasks started for a burst of one-record events with MAX_WORKERS=10."""
    events = 50 if ctx.smoke else 1000
    with tasks_stay_running():
        bucket, env = launcher_resources(ctx, max_workers=10)
        figures, records_seen = probe(ctx, ["burst", "--bucket", bucket, "--events", str(events)], env, "burst")
        cluster = env["CLUSTER"]
        listed = sum(
            len(page["taskArns"])
            for page in ctx.ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="RUNNING")
        )
    calls, started = figures["run_task_calls"], figures["tasks_started"]
    server_calls = operation_counts(records_seen)["ecs:RunTask"]
    ctx.sections.append(
        Section(
            "6. Launcher burst",
            [
                f"{events} one-record S3 events, one after another (the template gives the launcher a reserved "
                "concurrency of 1, so Lambda runs a burst's invocations that way), in one warm process, "
                "MAX_WORKERS=10, MESSAGES_PER_WORKER=5. No worker drains the queue meanwhile, so the backlog "
                "only grows: the most demanding case for the cap. moto's tasks are kept RUNNING (its default "
                "stops a task the first time it is described).",
                "",
                f"RunTask calls: {calls} (botocore `after-call` hook on the launcher's ECS client; the server "
                f"counted {server_calls}); tasks started: {started} (the cluster lists {listed} running). "
                f"The burst took {figures['seconds']:.1f} s ({figures['seconds'] / events * 1000:.1f} ms per "
                "event). The original pattern calls RunTask once per event: "
                f"{events} calls and {events} tasks.",
            ],
        )
    )
    return [
        Row("6a", f"Launcher burst: RunTask calls, {events} events", str(calls),
            f"original pattern {events}", calls / events, f"≤ {BURST_TARGET}", calls <= BURST_TARGET),
        Row("6b", f"Launcher burst: tasks started, {events} events", str(started),
            f"original pattern {events}", started / events, f"≤ {BURST_TARGET}", started <= BURST_TARGET),
    ]  # fmt: skip
