"""The cost model (lew/cost.py) fed with the task-seconds per archive this run measured."""

from __future__ import annotations

from bench.archives import human
from bench.context import Context
from bench.report import Section
from lew.cost import PRICES_NOTE, Design, Estimate, Prices, Workload, compare

ARCHIVES_PER_DAY = 1_000


def comparison_lines(estimates: list[Estimate]) -> list[str]:
    lines = ["| way of running it | per month |", "|---|---|"]
    for estimate in estimates:
        figure = f"not possible: {estimate.not_possible}" if estimate.not_possible else f"${estimate.total:,.2f}"
        lines.append(f"| {estimate.name} | {figure} |")
    return lines


def cost_section(ctx: Context) -> Section:
    """Monthly cost at the measured speeds, for 1,000 archives a day, with the template's defaults."""
    cases = []
    if "seconds_per_small_archive" in ctx.facts:
        cases.append(("a small archive (benchmark 1)", float(ctx.facts["seconds_per_small_archive"])))
    if "large_archive_seconds" in ctx.facts:
        size = human(int(ctx.facts["large_archive_size"]))
        cases.append((f"a {size} archive end to end (benchmark 3)", float(ctx.facts["large_archive_seconds"])))
    body = [
        f"`lew cost` (lew/cost.py, docs/cost.md) for {ARCHIVES_PER_DAY:,} archives a day with the template's "
        "defaults (1 vCPU, 2 GB, x86, on demand, 30 s billed start-up per task, two 20 s idle polls before a "
        "task exits), using the task-seconds per archive measured above. Sparse uploads (one archive per task) "
        "are the dear case; a burst lets each task drain MessagesPerWorker = 5.",
        "",
    ]
    if not cases:
        return Section("Cost at the measured speeds", [*body, "(benchmarks 1 and 3 did not run)"])
    for label, seconds in cases:
        for per_task in (1.0, 5.0):
            workload = Workload(ARCHIVES_PER_DAY, seconds)
            estimates = compare(workload, Design(archives_per_task=per_task), Prices())
            body += [
                f"**{label}: {seconds:.3g} task-seconds each, {per_task:g} archive(s) per task** "
                f"(`lew cost --archives-per-day {ARCHIVES_PER_DAY} --seconds-per-archive {seconds:.3g} "
                f"--archives-per-task {per_task:g}`)",
                "",
                *comparison_lines(estimates),
                "",
            ]
    body.append(f"Prices: {PRICES_NOTE}.")
    return Section("Cost at the measured speeds", body)
