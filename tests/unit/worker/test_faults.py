"""describe_fault: every foreseeable AWS fault at start-up is one sentence that says what is wrong and what to set."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from worker.faults import CREDENTIALS_HINT, STACK_QUEUE_HINT, Fault, check_queue, describe_fault

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/lew-work"
REGION = "eu-west-1"
SQS_ENDPOINT = "https://sqs.eu-west-1.amazonaws.com/"


def fault_of_answer(code: str, message: str = "") -> Fault | None:
    """Run the start-up check against a stubbed SQS that answers with this error code (no network)."""
    sqs = boto3.client("sqs", region_name=REGION)
    with Stubber(sqs) as stub:
        stub.add_client_error("get_queue_attributes", service_error_code=code, service_message=message)
        try:
            check_queue(sqs, QUEUE)
        except Exception as error:
            return describe_fault(error, queue_url=QUEUE, region=REGION, environ={})
    raise AssertionError("the stubbed error was not raised")


@pytest.mark.parametrize("code", ["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"])
def test_fault_missing_queue_names_the_queue_and_what_to_set(code: str) -> None:
    # GIVEN SQS saying the queue does not exist (a wrong URL, a deleted stack, or another region)
    # WHEN the start-up check meets it
    fault = fault_of_answer(code, "The specified queue does not exist.")

    # THEN one sentence names the queue, the region and the variables to set
    assert fault == Fault(
        "queue-not-found", f"the queue {QUEUE} does not exist in {REGION} ({code}): {STACK_QUEUE_HINT}"
    )


def test_fault_queue_of_another_region() -> None:
    # GIVEN SQS refusing a queue URL of another region than the client's endpoint
    fault = fault_of_answer("InvalidAddress", "The address https://sqs.us-east-1.amazonaws.com/ is not valid.")

    # THEN the sentence says the queue is not in this region, with SQS's own words
    assert fault == Fault(
        "queue-not-found",
        f"the queue {QUEUE} is not in {REGION} (InvalidAddress: The address https://sqs.us-east-1.amazonaws.com/ "
        f"is not valid): {STACK_QUEUE_HINT}",
    )


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException"])
def test_fault_access_denied_names_the_permissions(code: str) -> None:
    fault = fault_of_answer(code, "User is not authorized.")

    assert fault == Fault(
        "access-denied",
        f"AWS denied GetQueueAttributes on {QUEUE} ({code}: User is not authorized): the credentials need "
        "sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on the queue "
        "(the stack's worker task role has them)",
    )


@pytest.mark.parametrize(
    "code",
    [
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
    ],
)
def test_fault_rejected_credentials(code: str) -> None:
    fault = fault_of_answer(code, "The security token included in the request is invalid.")

    assert fault == Fault(
        "invalid-credentials",
        f"AWS does not accept the credentials ({code}: The security token included in the request is invalid): "
        f"{CREDENTIALS_HINT}, with a valid key pair",
    )


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"])
def test_fault_expired_credentials(code: str) -> None:
    fault = fault_of_answer(code, "The security token included in the request is expired")

    assert fault == Fault(
        "expired-credentials",
        f"the AWS credentials have expired ({code}): refresh them (a new AWS_SESSION_TOKEN, `aws sso login`, "
        "or let the task role renew them)",
    )


@pytest.mark.parametrize("code", ["RequestExpired", "RequestTimeTooSkewed"])
def test_fault_clock_skew(code: str) -> None:
    fault = fault_of_answer(code, "Request has expired.")

    assert fault == Fault(
        "clock-skew",
        f"AWS refused the request's time ({code}: Request has expired): set this machine's clock right (NTP)",
    )


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (NoCredentialsError(), Fault("no-credentials", f"no AWS credentials found: {CREDENTIALS_HINT}")),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            Fault("partial-credentials", "incomplete AWS credentials in env: AWS_SECRET_ACCESS_KEY is missing; set it"),
        ),
        (
            ProfileNotFound(profile="nobody"),
            Fault(
                "no-credentials",
                "AWS_PROFILE=nobody names no profile in the AWS config files: set it to an existing one, or unset it",
            ),
        ),
        (
            CredentialRetrievalError(provider="container-role", error_msg="timed out"),
            Fault(
                "no-credentials",
                "AWS credentials could not be loaded (Error when retrieving credentials from container-role: "
                f"timed out): {CREDENTIALS_HINT}",
            ),
        ),
    ],
)
def test_fault_credential_errors(error: Exception, fault: Fault) -> None:
    assert describe_fault(error, queue_url=QUEUE, region=REGION, environ={}) == fault


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url=SQS_ENDPOINT),
        ConnectTimeoutError(endpoint_url=SQS_ENDPOINT),
        ReadTimeoutError(endpoint_url=SQS_ENDPOINT),
    ],
)
def test_fault_unreachable_aws_points_at_the_network(error: Exception) -> None:
    fault = describe_fault(error, queue_url=QUEUE, region=REGION, environ={})

    assert fault == Fault(
        "unreachable",
        f"cannot reach {SQS_ENDPOINT} ({type(error).__name__}): check the network route to AWS in {REGION} "
        "(an ECS task needs a public IP, a NAT gateway or VPC endpoints) and AWS_REGION",
    )


def test_fault_unreachable_emulator_names_aws_endpoint_url() -> None:
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:1/")

    fault = describe_fault(error, queue_url=QUEUE, region=REGION, environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})

    assert fault == Fault(
        "unreachable",
        "cannot reach http://127.0.0.1:1/ (EndpointConnectionError): is the server at "
        "AWS_ENDPOINT_URL=http://127.0.0.1:1 running? (unset it to use AWS)",
    )


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyError("Messages")])
def test_fault_bugs_are_not_faults(error: Exception) -> None:
    assert describe_fault(error, queue_url=QUEUE, region=REGION, environ={}) is None


def test_fault_other_aws_answers_are_not_faults() -> None:
    # A throttle that outlived botocore's retries is not a fault of the configuration: it stays a crash
    assert fault_of_answer("ThrottlingException") is None
