"""A Dagster code location whose asset is computed by lew: the sales CSVs summed by examples/summarize.py.

    lew local up --processor command --param ProcessParameters=column:text:64 \
        --param ProcessCommand="$PWD/.venv/bin/python $PWD/examples/summarize.py {input_dir} {output_dir}"
    # in another terminal:
    .venv/bin/dagster asset materialize -f examples/dagster_definitions.py --select sales_summary
    # or the UI: .venv/bin/dagster dev -f examples/dagster_definitions.py

The asset passes the job parameter `column` (the CSV column to sum), which the processor reads as
LEW_PARAM_COLUMN. The materialization carries the job's manifest (outputs with S3 URLs, sizes, durations,
parameters) and the processor's own metadata (files, column, total) and check. LEW_ENDPOINT or LEW_STACK choose
another stack than the running `lew local up`.
"""

import os
from pathlib import Path

import dagster as dg

from lew.dagster import PipesLewClient

SALES = Path(__file__).resolve().parent / "data" / "sales"


@dg.asset(check_specs=[dg.AssetCheckSpec("every_file_has_rows", asset="sales_summary")])
def sales_summary(context: dg.AssetExecutionContext, lew: PipesLewClient) -> dg.MaterializeResult:
    """The sales folder, packed, processed as one lew job."""
    return lew.run(context=context, path=SALES, parameters={"column": "amount"}, timeout=600).get_materialize_result()


defs = dg.Definitions(
    assets=[sales_summary],
    resources={"lew": PipesLewClient(endpoint=os.environ.get("LEW_ENDPOINT"), stack=os.environ.get("LEW_STACK"))},
)
