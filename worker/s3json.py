"""Small JSON documents kept in S3 (manifests, claims, cancel markers): one GET, read defensively.

Every reader asks the same three things (is the object there? is its body JSON? is that JSON an object?) and
differs only in what a damaged document means to it: a damaged manifest records nothing, a damaged claim still
holds its upload, a damaged cancel marker still cancels. `get_json_object` answers the three questions and leaves
that choice to the caller; `read_json_object` is the common case where damaged counts as absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from worker.errors import GONE_CODES, error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

# The object is not there, but the bucket is (a HEAD's 404 has no error body: its code is "404" or "NotFound").
MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class StoredJson:
    """An object's GET answer (its body read) and its body as a JSON object, or None when it is not one."""

    response: GetObjectOutputTypeDef
    document: dict[str, Any] | None


def get_json_object(s3: S3Client, bucket: str, key: str, *, absent: frozenset[str] = GONE_CODES) -> StoredJson | None:
    """One GET of `key`: None when S3 answers with an error code in `absent`; other S3 errors are raised.

    `absent` defaults to every "not there" code (GONE_CODES: the key, its version, or the bucket); a caller for
    whom a missing bucket is an error passes MISSING_KEY_CODES. A body that is not JSON, or JSON that is not an
    object, gives `document` None.
    """
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in absent:
            return None
        raise
    try:
        document = json.loads(response["Body"].read())
    except ValueError:  # not UTF-8 or not JSON (UnicodeDecodeError is a ValueError)
        document = None
    return StoredJson(response, document if isinstance(document, dict) else None)


def read_json_object(
    s3: S3Client, bucket: str, key: str, *, absent: frozenset[str] = GONE_CODES
) -> dict[str, Any] | None:
    """The JSON object at `key`; None when there is none, or when its body is not a JSON object.

    Raises the S3 errors whose code is not in `absent` (see `get_json_object`).
    """
    found = get_json_object(s3, bucket, key, absent=absent)
    return None if found is None else found.document
