"""`python -m bench [--smoke] [--write FILE] [--only 1,4,...]`: run the benchmarks against a local moto server and
print one table (with `--write`, also BENCHMARKS.md with the machine's description and the command)."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from bench import e2e_bench, launcher_bench, worker_bench
from bench.context import Context
from bench.cost_example import cost_section
from bench.harness import machine_description, moto_server, use_fake_credentials
from bench.report import Row, Section, markdown, print_table

Benchmark = Callable[[Context], list[Row]]

# Each entry: the benchmark numbers it produces, what it is called, and the function that runs it.
BENCHMARKS: tuple[tuple[tuple[str, ...], str, Benchmark], ...] = (
    (("1",), "Worker overhead", worker_bench.worker_overhead),
    (("2", "3"), "Memory and large-archive throughput", worker_bench.large_archives),
    (("4",), "Launcher cold start", launcher_bench.cold_start),
    (("5",), "Launcher per invocation", launcher_bench.per_invocation),
    (("6",), "Launcher burst", launcher_bench.burst),
    (("7",), "End-to-end latency", e2e_bench.end_to_end),
)

PREAMBLE = [
    "Written by `make bench` (`python -m bench --write BENCHMARKS.md`); the CI runs `make bench-smoke` (tiny N) only "
    "to keep the suite working. Every benchmark runs against a moto server on 127.0.0.1 started by the suite. "
    "The figures compared in a row were measured in the same run, interleaved (A B A B …), and are medians: "
    "the machine is shared and noisy, so the ratios are what matter, not the absolute times.",
    "",
    "Run it: `make bench` (the full suite, about 15 minutes on 2 cores; rewrites this file), `make bench-smoke` "
    "(under a minute), or `python -m bench --only 1,4` for some benchmarks (`--workdir DIR` keeps the generated "
    "archives between runs, `--no-profile` skips the profiles of missed targets).",
    "",
    "How each figure is taken, and the profile wherever a target is missed, follow the table.",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny N and small archives: checks that the suite works")
    parser.add_argument("--write", type=Path, metavar="FILE", help="also write the results to FILE (BENCHMARKS.md)")
    parser.add_argument("--only", default="", help="comma-separated benchmark numbers to run (default: all)")
    parser.add_argument("--workdir", type=Path, help="scratch folder for archives and logs (default: a temp folder)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiles of missed targets")
    return parser.parse_args(argv)


def selected(only: str) -> list[tuple[tuple[str, ...], str, Benchmark]]:
    wanted = {item.strip() for item in only.split(",") if item.strip()}
    known = {number for numbers, _, _ in BENCHMARKS for number in numbers}
    unknown = wanted - known
    if unknown:
        raise SystemExit(f"python -m bench: unknown benchmark number(s) {', '.join(sorted(unknown))}; known: 1-7")
    return [entry for entry in BENCHMARKS if not wanted or wanted & set(entry[0])]


def run_all(args: argparse.Namespace, console: Console, workdir: Path) -> tuple[list[Row], list[Section]]:
    rows: list[Row] = []
    with moto_server() as server:
        ctx = Context(
            server=server,
            workdir=workdir,
            smoke=args.smoke,
            console=console,
            profile=not (args.smoke or args.no_profile),
        )
        for numbers, title, benchmark in selected(args.only):
            console.rule(f"[bold]{' & '.join(numbers)}. {title}")
            started = time.monotonic()
            try:
                rows += benchmark(ctx)
            except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
                console.print(f"[bold red]{title} failed:[/] {error}")
                ctx.sections.append(
                    Section(f"{' & '.join(numbers)}. {title}: failed", ["```", traceback.format_exc(), "```"])
                )
                rows += [
                    Row(number, title, "", "", None, "", None, error=str(error).splitlines()[0]) for number in numbers
                ]
            console.print(f"[dim]  ({time.monotonic() - started:.0f} s)[/]")
        if not args.only:
            ctx.sections.append(cost_section(ctx))
    return rows, ctx.sections


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_fake_credentials()
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a log file or a pipe: wide enough for the table's columns
    mode = "smoke" if args.smoke else "full"
    started = time.monotonic()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        rows, sections = run_all(args, console, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="lew-bench-") as folder:
            rows, sections = run_all(args, console, Path(folder))
    print_table(rows, console, f"lew benchmarks ({mode} run, {time.monotonic() - started:.0f} s)")
    if args.write:
        command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
        args.write.write_text(
            markdown(rows, sections, machine_description(), command.strip(), PREAMBLE), encoding="utf-8"
        )
        console.print(f"wrote {args.write}")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
