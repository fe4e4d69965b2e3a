"""An example processor for lew's `command` processor: sums one column of every CSV file in its input.

    lew local up --processor command --param ProcessParameters=column:text:64 \
        --param ProcessCommand="$PWD/.venv/bin/python $PWD/examples/summarize.py {input_dir} {output_dir}"

The column is the job parameter `column` (default `amount`; `lew submit sales.zip --param column=amount`), which
the worker hands over as LEW_PARAM_COLUMN. It writes `summary.json` to its output folder. Started from Dagster
(examples/dagster_definitions.py) it also reports, through dagster-pipes, the totals as the asset's metadata and
the `every_file_has_rows` check; started any other way it just writes the summary (open_dagster_pipes then gives
a stand-in context that reports nothing).
It has no AWS credentials and needs none: the worker relays what it reports.
"""

import csv
import json
import os
import sys
import warnings
from pathlib import Path

from dagster_pipes import DagsterPipesWarning, open_dagster_pipes


def summarize(source: Path, column: str) -> dict[str, dict[str, float]]:
    """{file name: {"rows": n, "total": sum of `column`}} for every CSV file under `source`."""
    totals = {}
    for path in sorted(source.rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        totals[path.relative_to(source).as_posix()] = {
            "rows": len(rows),
            "total": round(sum(float(row[column]) for row in rows), 2),
        }
    return totals


def main(source: Path, output: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DagsterPipesWarning)  # not started from Dagster: nothing to report to
        pipes_context = open_dagster_pipes()
    column = os.environ.get("LEW_PARAM_COLUMN", "amount")
    with pipes_context as pipes:
        totals = summarize(source, column)
        if not totals:
            print("no CSV file in the archive")
            return 3  # lew's contract: exit 3 rejects the input (a failure manifest, no retry)
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
