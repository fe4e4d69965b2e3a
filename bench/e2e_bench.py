"""Benchmark 7: upload → manifest latency through lew's whole local stack."""

from __future__ import annotations

import json
import os

from bench.archives import small_zip
from bench.context import Context, unique
from bench.harness import SCRUBBED_VARIABLES, median, percentile, python, run_child
from bench.report import Row, Section

P50_TARGET = 3.0
P95_TARGET = 6.0


def end_to_end(ctx: Context) -> list[Row]:
    """#7: 20 small archives uploaded at once into `lew`'s local stack; seconds from upload to manifest."""
    count = 3 if ctx.smoke else 20
    archive = small_zip(ctx.workdir / "small.zip")
    out = ctx.workdir / "logs" / f"{unique('e2e')}.json"
    log = out.with_suffix(".stack.log")
    # The probe runs its own stack (its own moto server, reset at start), so it gets a clean environment:
    # the stack sets the endpoint and its fake credentials itself.
    env = {name: value for name, value in os.environ.items() if name not in SCRUBBED_VARIABLES}
    env.pop("AWS_ENDPOINT_URL", None)
    argv = [python(), "-m", "bench.e2e_probe", "--archive", str(archive), "--count", str(count)]
    run_child([*argv, "--out", str(out), "--log", str(log)], env=env, log_path=out.with_suffix(".log"), timeout=600)
    figures = json.loads(out.read_text(encoding="utf-8"))
    latencies: list[float] = figures["latencies"]
    if figures["missing"]:
        raise RuntimeError(f"{len(figures['missing'])} of {count} manifests never appeared (stack log: {log})")
    failed = [status for status in figures["statuses"] if status != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {count} jobs did not succeed: {failed}")
    p50, p95 = median(latencies), percentile(latencies, 0.95)
    ctx.sections.append(
        Section(
            "7. End-to-end latency",
            [
                f"`lew`'s local stack (`lew.local.stack.LocalStack`: moto server, local Lambda runtime, local ECS "
                "agent running `python -m worker` per task) in a process of its own, with the template's "
                f"parameters and the local overrides ({'; '.join(figures['overrides'])}). {count} small zips "
                "are uploaded back to back, like a user's batch; each latency runs from the end of an upload to "
                "the first listing that shows its manifest (listed every 50 ms). It includes the S3 "
                "notification, the launcher, RunTask, the agent's start of a worker process (interpreter and "
                f"imports) and the job. MaxWorkers={figures['max_workers']}; the agent started "
                f"{figures['tasks_started']} worker processes.",
                "",
                "Latencies (s): " + ", ".join(f"{value:.2f}" for value in sorted(latencies)),
            ],
        )
    )
    return [
        Row("7a", f"End-to-end upload → manifest, p50 ({count} archives)", f"{p50:.2f} s", "—", None,
            f"≤ {P50_TARGET:g} s", p50 <= P50_TARGET),
        Row("7b", f"End-to-end upload → manifest, p95 ({count} archives)", f"{percentile(latencies, 0.95):.2f} s",
            "—", None, f"≤ {P95_TARGET:g} s", p95 <= P95_TARGET),
    ]  # fmt: skip
