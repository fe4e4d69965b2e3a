"""The floors: bare boto3 loops that make only the calls the worker's design needs, run as fresh processes.

`python -m bench.floors drain --queue-url URL` drains the queue like the worker, per message: its share of a
batched receive, the manifest lookup (a GET that answers 404), the GET of the archive (streamed to disk), one PUT
per output (a small JSON, like inventory.json), the PUT of the manifest, and the delete.

`python -m bench.floors copy --bucket B --key K --dest-key D --folder F` streams an object to disk with one
GET and puts the same bytes back with one PUT.

"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

import boto3
from botocore.exceptions import ClientError

COPY_CHUNK = 1024 * 1024


def stem_of(key: str, input_prefix: str = "incoming/") -> str:
    """The results folder name of a key, as the worker names it (docs/worker.md, "Where results go")."""
    relative = key[len(input_prefix) :] if key.startswith(input_prefix) else key
    return relative.replace("%", "%25").replace("/", "%2F")


def drain(queue_url: str, wait_time_seconds: int, batch_size: int, idle_polls: int) -> int:
    """Process every message the way the worker's design needs, and nothing else; return how many."""
    s3: Any = boto3.client("s3")
    sqs: Any = boto3.client("sqs")
    processed = empty = 0
    with tempfile.TemporaryDirectory(prefix="lew-floor-") as folder:
        archive_path = Path(folder) / "archive"
        while empty < idle_polls:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=batch_size,
                WaitTimeSeconds=wait_time_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            empty = 0 if messages else empty + 1
            for message in messages:
                for record in json.loads(message["Body"])["Records"]:
                    bucket = record["s3"]["bucket"]["name"]
                    key = unquote_plus(record["s3"]["object"]["key"])
                    folder_key = f"results/{stem_of(key)}/"
                    try:
                        s3.get_object(Bucket=bucket, Key=folder_key + "manifest.json")["Body"].read()
                    except ClientError as error:
                        if error.response["Error"]["Code"] not in {"NoSuchKey", "404"}:
                            raise
                    response = s3.get_object(Bucket=bucket, Key=key)
                    with archive_path.open("wb") as file:
                        shutil.copyfileobj(response["Body"], file, COPY_CHUNK)
                    inventory = {"key": key, "size": archive_path.stat().st_size, "etag": response["ETag"]}
                    s3.put_object(Bucket=bucket, Key=folder_key + "inventory.json", Body=json.dumps(inventory))
                    manifest = {"status": "succeeded", "source": {"bucket": bucket, "key": key}, "outputs": 1}
                    s3.put_object(Bucket=bucket, Key=folder_key + "manifest.json", Body=json.dumps(manifest))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                processed += 1
    return processed


def copy(bucket: str, key: str, dest_key: str, folder: Path) -> None:
    """GET an object to a file, then PUT the same bytes with one request."""
    s3: Any = boto3.client("s3")
    path = folder / PurePosixPath(key).name
    with path.open("wb") as file:
        for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(COPY_CHUNK):
            file.write(chunk)
    with path.open("rb") as file:
        s3.put_object(Bucket=bucket, Key=dest_key, Body=file)
    path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floors")
    commands = parser.add_subparsers(dest="command", required=True)
    drain_parser = commands.add_parser("drain")
    drain_parser.add_argument("--queue-url", required=True)
    drain_parser.add_argument("--wait-time-seconds", type=int, default=1)
    drain_parser.add_argument("--batch-size", type=int, default=10)
    drain_parser.add_argument("--idle-polls", type=int, default=1)
    copy_parser = commands.add_parser("copy")
    copy_parser.add_argument("--bucket", required=True)
    copy_parser.add_argument("--key", required=True)
    copy_parser.add_argument("--dest-key", required=True)
    copy_parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "drain":
        count = drain(args.queue_url, args.wait_time_seconds, args.batch_size, args.idle_polls)
        print(f"floor drained {count} messages")
    else:
        copy(args.bucket, args.key, args.dest_key, args.folder)
        print("floor copied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
