"""Faults of the worker's surroundings that it can foresee: no credentials, AWS unreachable, no queue, no access.

Each becomes one sentence that says what is wrong and what to set, and the worker exits EXIT_ENVIRONMENT
instead of logging a crash with a traceback. Anything not recognised here is a bug, and stays a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import (
    ClientError,
    ConnectionError,  # botocore's base of EndpointConnectionError, ConnectTimeoutError, SSLError
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# Exit codes of `python -m worker`; docs/worker.md and the README's worker section list them.
EXIT_OK = 0  # the queue is drained, or a signal stopped the worker
EXIT_CRASH = 1  # a bug: the log's last line is "worker crashed" with the traceback
EXIT_CONFIG = 2  # an environment variable is missing or invalid; nothing was called
EXIT_ENVIRONMENT = 3  # AWS cannot be used: credentials, network, the queue or permissions

QUEUE_GONE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
# SQS's answer to a queue URL of another region than the client's endpoint.
WRONG_ENDPOINT_CODES = frozenset({"InvalidAddress"})
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException"})
BAD_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
    }
)
EXPIRED_CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})
CLOCK_CODES = frozenset({"RequestExpired", "RequestTimeTooSkewed"})

CREDENTIALS_HINT = (
    "on ECS the task role provides them (the task definition's taskRoleArn); elsewhere set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE"
)
STACK_QUEUE_HINT = "set QUEUE_URL to the work queue's URL (the stack's QueueUrl output) and AWS_REGION to its region"


@dataclass(frozen=True)
class Fault:
    """A foreseeable fault: `reason` is a stable key for log queries, `message` the sentence for people."""

    reason: str
    message: str


def check_queue(sqs: SQSClient, queue_url: str) -> dict[str, str]:
    """One GetQueueAttributes before the first receive, so that a wrong queue, region or credential shows at once.

    Returns the queue's QueueArn and RedrivePolicy (worker/redrive.py reads its maxReceiveCount from it). Raises
    what botocore raises; `describe_fault` turns the foreseeable ones into a Fault.
    """
    answer = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "RedrivePolicy"])
    return {str(name): value for name, value in answer.get("Attributes", {}).items()}


def describe_fault(error: BaseException, *, queue_url: str, region: str, environ: Mapping[str, str]) -> Fault | None:
    """The Fault for a foreseeable error of an AWS call; None for anything else (a bug, which keeps its traceback)."""
    if isinstance(error, ClientError):
        return _client_fault(error, queue_url=queue_url, region=region)
    if isinstance(error, ConnectionError | HTTPClientError):
        return _unreachable(error, region=region, environ=environ)
    return _credentials_fault(error)


def _credentials_fault(error: BaseException) -> Fault | None:
    kwargs = getattr(error, "kwargs", {})
    if isinstance(error, NoCredentialsError):
        message = f"no AWS credentials found: {CREDENTIALS_HINT}"
    elif isinstance(error, PartialCredentialsError):
        message = f"incomplete AWS credentials in {kwargs.get('provider')}: {kwargs.get('cred_var')} is missing; set it"
    elif isinstance(error, ProfileNotFound):
        message = (
            f"AWS_PROFILE={kwargs.get('profile')} names no profile in the AWS config files: "
            "set it to an existing one, or unset it"
        )
    elif isinstance(error, CredentialRetrievalError | TokenRetrievalError | SSOError):
        message = f"AWS credentials could not be loaded ({error}): {CREDENTIALS_HINT}"
    else:
        return None
    reason = "partial-credentials" if isinstance(error, PartialCredentialsError) else "no-credentials"
    return Fault(reason, message)


def _client_fault(error: ClientError, *, queue_url: str, region: str) -> Fault | None:
    details = error.response.get("Error", {})
    code, said = str(details.get("Code", "")), str(details.get("Message", "")).rstrip(".")
    answer = f"{code}: {said}" if said else code
    faults = {
        QUEUE_GONE_CODES: (
            "queue-not-found",
            f"the queue {queue_url} does not exist in {region} ({code}): {STACK_QUEUE_HINT}",
        ),
        WRONG_ENDPOINT_CODES: (
            "queue-not-found",
            f"the queue {queue_url} is not in {region} ({answer}): {STACK_QUEUE_HINT}",
        ),
        DENIED_CODES: (
            "access-denied",
            f"AWS denied {error.operation_name} on {queue_url} ({answer}): the credentials need sqs:ReceiveMessage, "
            "sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on the queue "
            "(the stack's worker task role has them)",
        ),
        BAD_CREDENTIAL_CODES: (
            "invalid-credentials",
            f"AWS does not accept the credentials ({answer}): {CREDENTIALS_HINT}, with a valid key pair",
        ),
        EXPIRED_CREDENTIAL_CODES: (
            "expired-credentials",
            f"the AWS credentials have expired ({code}): refresh them (a new AWS_SESSION_TOKEN, `aws sso login`, "
            "or let the task role renew them)",
        ),
        CLOCK_CODES: ("clock-skew", f"AWS refused the request's time ({answer}): set this machine's clock right (NTP)"),
    }
    for codes, (reason, message) in faults.items():
        if code in codes:
            return Fault(reason, message)
    return None


def _unreachable(error: BaseException, *, region: str, environ: Mapping[str, str]) -> Fault:
    kwargs = getattr(error, "kwargs", {})
    where = kwargs.get("endpoint_url") or kwargs.get("proxy_url") or "the endpoint"
    endpoint = environ.get("AWS_ENDPOINT_URL_SQS") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        fix = f"is the server at AWS_ENDPOINT_URL={endpoint} running? (unset it to use AWS)"
    else:
        fix = (
            f"check the network route to AWS in {region} (an ECS task needs a public IP, a NAT gateway or VPC "
            "endpoints) and AWS_REGION"
        )
    return Fault("unreachable", f"cannot reach {where} ({type(error).__name__}): {fix}")
