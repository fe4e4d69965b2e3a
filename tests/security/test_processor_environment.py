"""The processor subprocess gets the minimal, documented environment: no AWS credential or worker setting leaks.

End to end: a real `python -m worker` process, with credentials and settings in its own environment, runs a
`command` processor that writes its environment to an output file; the test reads that output back from S3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.faults.harness import REGION, manifest_key_for, read_json, work_message, zip_archive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

REPO_ROOT = Path(__file__).resolve().parents[2]
# docs/worker.md, "The processor's environment".
DOCUMENTED = {"PATH", "HOME", "TMPDIR", "LANG", "LEW_INPUT_DIR", "LEW_OUTPUT_DIR", "LEW_PROGRESS"}
# Python adds this one itself when it coerces a C locale (PEP 538); it is not something the worker passes on.
ADDED_BY_PYTHON = {"LC_CTYPE"}
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIADONOTLEAK0000000",
    "AWS_SECRET_ACCESS_KEY": "do-not-leak-secret",
    "AWS_SESSION_TOKEN": "do-not-leak-token",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/do-not-leak",
}
DUMP_ENVIRONMENT = (
    f'{sys.executable} -c "import json, os, pathlib; '
    "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'env.json').write_text(json.dumps(dict(os.environ)))\""
)


def test_processor_gets_only_the_documented_environment(moto_server: str) -> None:
    # GIVEN a worker process whose own environment holds credentials and settings
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)
    bucket, key = "lew-env", "incoming/env/scene.zip"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName="lew-work")["QueueUrl"]
    s3.put_object(Bucket=bucket, Key=key, Body=zip_archive(key))
    sqs.send_message(QueueUrl=queue_url, MessageBody=work_message(s3, bucket, key))
    worker_environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO_ROOT),
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_REGION": REGION,
        **SECRETS,
        "QUEUE_URL": queue_url,
        "PROCESSOR": "command",
        "PROCESS_COMMAND": DUMP_ENVIRONMENT,
        "WAIT_TIME_SECONDS": "1",
        "IDLE_POLLS": "1",
    }
    # WHEN it processes an archive with a command that records its environment
    finished = subprocess.run(
        [sys.executable, "-m", "worker"],
        cwd=REPO_ROOT,
        env=worker_environment,
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout.decode()[-2000:]
    manifest = read_json(s3, bucket, manifest_key_for(key))
    assert manifest is not None and manifest["status"] == "succeeded", manifest
    seen = read_json(s3, bucket, "results/env%2Fscene.zip/env.json")
    assert seen is not None
    # THEN it saw the documented variables, and nothing else
    assert set(seen) - ADDED_BY_PYTHON == DOCUMENTED, sorted(seen)
    assert not any(name.startswith("AWS_") for name in seen)
    assert not set(json.dumps(seen).split('"')) & set(SECRETS.values())
    # AND its HOME and TMPDIR are the job's own folder, which holds its input folder, which holds the output folder
    job_folder = Path(seen["HOME"])
    assert seen["TMPDIR"] == seen["HOME"]
    assert Path(seen["LEW_INPUT_DIR"]).parent == job_folder
    assert Path(seen["LEW_OUTPUT_DIR"]) == Path(seen["LEW_INPUT_DIR"], "out")
    assert not job_folder.exists()  # removed once the job was done
