"""A Prefect flow whose task runs on lew: the sales CSVs summed by examples/summarize.py.

    lew local up --processor command --param ProcessParameters=column:text:64 \
        --param ProcessCommand="$PWD/.venv/bin/python $PWD/examples/summarize.py {input_dir} {output_dir}"
    # in another terminal:
    .venv/bin/python examples/prefect_flow.py

Without a Prefect server configured, Prefect starts a temporary local one for the run. The task's progress and the
processor's output go to Prefect's run logger; a failed job fails the task with its error, and Prefect retries it
(a new job each time) unless the failure is permanent (retry_unless_permanent, lew_job's default retry condition:
a rejected input, a bad parameter, a cancelled or dead-lettered job would fail the same way again). LEW_ENDPOINT
or LEW_STACK choose another stack than the running `lew local up`.
"""

import os
from pathlib import Path

from prefect import flow

from lew.client import Client
from lew.prefect import lew_job, retry_unless_permanent

SALES = Path(__file__).resolve().parent / "data" / "sales"


@flow(log_prints=True)
def summarize_sales(folder: Path = SALES, column: str = "amount") -> list[str]:
    """Run the folder through lew, summing `column` (a job parameter); the S3 keys of the outputs."""
    client = Client.connect(endpoint=os.environ.get("LEW_ENDPOINT"), stack=os.environ.get("LEW_STACK"))
    task = lew_job.with_options(retries=2, retry_delay_seconds=10, retry_condition_fn=retry_unless_permanent)
    manifest = task(folder, parameters={"column": column}, client=client, timeout=600)
    outputs = [output["key"] for output in manifest["outputs"]]
    print(f"outputs: {outputs}")
    return outputs


if __name__ == "__main__":
    summarize_sales()
