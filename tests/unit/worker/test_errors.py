"""The S3 answers table of docs/worker.md: which answers end a job at once, and what their reason tells the user."""

from __future__ import annotations

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from worker.errors import (
    KMS_RULE,
    S3_RULES,
    describe_s3_error,
    is_permanent,
    s3_rule,
)


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


@pytest.mark.parametrize(
    "code",
    [
        "NoSuchBucket",
        "NoSuchKey",
        "NoSuchVersion",
        "404",
        "InvalidObjectState",
        "AccessDenied",
        "403",
        "KMS.DisabledException",
        "KMS.NotFoundException",
        "KMS.KMSInvalidStateException",
        "InvalidRequest",
    ],
)
def test_is_permanent_for_answers_a_retry_cannot_change(code: str) -> None:
    assert is_permanent(client_error(code))


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InternalError", 500),
        ("ServiceUnavailable", 503),
        ("SlowDown", 503),
        ("503", 503),
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("RequestTimeout", 400),
        ("RequestTimeTooSkewed", 403),
        ("ExpiredToken", 400),
        ("KMS.ThrottlingException", 400),
        ("KMS.KMSInternalException", 500),
        ("SomethingNew", 400),  # unknown: retried, so that nothing is lost
        ("SomethingNewOnTheServer", 502),
    ],
)
def test_is_permanent_is_false_for_answers_a_retry_may_change(code: str, status: int) -> None:
    assert not is_permanent(client_error(code, status=status))


def test_is_permanent_is_false_for_connection_errors() -> None:
    assert not is_permanent(EndpointConnectionError(endpoint_url="https://s3.example"))
    assert not is_permanent(ReadTimeoutError(endpoint_url="https://s3.example"))


def test_s3_rule_sees_through_boto3s_upload_wrapper() -> None:
    # GIVEN upload_file's S3UploadFailedError raised while handling an AccessDenied
    try:
        try:
            raise client_error("AccessDenied")
        except ClientError as error:
            raise S3UploadFailedError(f"Failed to upload x to b/k: {error}")  # noqa: B904 - as boto3 does
    except S3UploadFailedError as wrapped:
        # THEN it is classified as the AccessDenied it wraps
        assert s3_rule(wrapped) is S3_RULES["AccessDenied"]
        assert "AccessDenied" in describe_s3_error(wrapped, "PUT s3://b/k")


def test_s3_rule_of_access_denied_to_the_kms_key_is_the_kms_rule() -> None:
    error = client_error(
        "AccessDenied", "User: arn:aws:sts::1:assumed-role/w is not authorized to perform: kms:Decrypt"
    )
    assert s3_rule(error) is KMS_RULE


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("InvalidObjectState", "restore the object first"),
        ("NoSuchKey", "upload it again"),
        ("AccessDenied", "grant the worker's task role"),
        ("KMS.DisabledException", "enable the key"),
    ],
)
def test_describe_s3_error_names_the_request_the_code_and_what_to_do(code: str, words: str) -> None:
    line = describe_s3_error(client_error(code), "GET s3://b/incoming/x.zip")
    assert line.startswith(f"GET s3://b/incoming/x.zip: S3 answered {code} (")
    assert words in line


def test_every_permanent_rule_says_what_to_do_and_no_transient_one_asks_the_user_to() -> None:
    for code, rule in S3_RULES.items():
        assert rule.action, code
        assert rule.permanent or rule.action.startswith("nothing"), code
