"""An example processor for lew's `command` processor: sums one column of every CSV file in its input.

    lew local up --processor command --param ProcessParameters=column:text:64 \
        --param ProcessCommand="$PWD/.venv/bin/python $PWD/examples/summarize.py {input_dir} {output_dir}"

The column is the job parameter `column` (default `amount`; `lew submit sales.zip --param column=amount`), which
the worker hands over as LEW_PARAM_COLUMN. It writes `summary.json` to its output folder. Started from Dagster
(examples/dagster_definitions.py) it also reports, through dagster-pipes, the totals as the asset's metadata and
the `every_file_has_rows` check; started any other way it just writes the summary (open_dagster_pipes then gives
a stand-in context that reports nothing).
It has no AWS credentials and needs none: the worker relays what it reports. Input it cannot summarize (no CSV
file, no such column, a value that is not a number) is rejected with one line on stderr and exit code 3, which lew
records as a permanent failure: retrying it would fail the same way.
"""

import csv
import json
import os
import sys
import warnings
from pathlib import Path

from dagster_pipes import DagsterPipesWarning, open_dagster_pipes


class Rejected(Exception):  # noqa: N818 - reads as what happened to the input
    """The input cannot be summarized (no CSV file, no such column, a value that is not a number)."""


def summarize(source: Path, column: str) -> dict[str, dict[str, float]]:
    """{file name: {"rows": n, "total": sum of `column`}} for every CSV file under `source`.

    Raises Rejected naming the file, line and value it cannot use.
    """
    totals = {}
    for path in sorted(source.rglob("*.csv")):
        name = path.relative_to(source).as_posix()
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
        if column not in (reader.fieldnames or []):
            raise Rejected(f"{name} has no {column!r} column (its columns: {', '.join(reader.fieldnames or [])})")
        total = 0.0
        for line, row in enumerate(rows, start=2):
            try:
                total += float(row[column])
            except (TypeError, ValueError):
                raise Rejected(f"{name} line {line}: {column} {row[column]!r} is not a number") from None
        totals[name] = {"rows": len(rows), "total": round(total, 2)}
    if not totals:
        raise Rejected("no CSV file in the archive")
    return totals


def main(source: Path, output: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DagsterPipesWarning)  # not started from Dagster: nothing to report to
        pipes_context = open_dagster_pipes()
    column = os.environ.get("LEW_PARAM_COLUMN", "amount")
    with pipes_context as pipes:
        try:
            totals = summarize(source, column)
        except Rejected as rejected:
            # On stderr, which lew's failure manifest quotes; exit 3 rejects the input (a failure, no retry).
            print(f"summarize: {rejected}", file=sys.stderr)
            return 3
        (output / "summary.json").write_text(json.dumps(totals, indent=2) + "\n", encoding="utf-8")
        total = round(sum(item["total"] for item in totals.values()), 2)
        print(f"summarized {len(totals)} files: {column} {total}")
        pipes.log.info(f"summarized {len(totals)} files")
        pipes.report_asset_materialization(metadata={"files": len(totals), "column": column, "total": total})
        pipes.report_asset_check(
            check_name="every_file_has_rows", passed=all(item["rows"] > 0 for item in totals.values())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
