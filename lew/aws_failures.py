"""One line for each failure of an AWS call that a user can fix: no connection, no or bad credentials, no access.

`lew` talks to two kinds of endpoint: a local stack on this machine and AWS itself. An unreachable local
endpoint means `lew local up` is not running; an unreachable AWS endpoint means the network (or the region)
is wrong. Credentials that AWS rejects or that have expired say so, with what to run.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

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

from worker.faults import BAD_CREDENTIAL_CODES, DENIED_CODES, EXPIRED_CREDENTIAL_CODES  # one list of AWS's codes

CONFIGURE_HINT = "run `aws configure` (or `aws sso login`) or set AWS_PROFILE"
LOCAL_HINT = "the local stack, `lew local up`, needs none"


def describe_aws_failure(error: BaseException) -> str | None:
    """The one line for an AWS failure the user can fix; None for any other error."""
    if isinstance(error, ConnectionError | HTTPClientError):
        return _unreachable(error)
    if isinstance(error, NoCredentialsError):
        return f"no AWS credentials found: {CONFIGURE_HINT} ({LOCAL_HINT})"
    if isinstance(error, PartialCredentialsError | ProfileNotFound | CredentialRetrievalError):
        return f"AWS credentials cannot be used ({error}): {CONFIGURE_HINT}"
    if isinstance(error, TokenRetrievalError | SSOError):
        return f"the AWS SSO session cannot be used ({error}): run `aws sso login`"
    if isinstance(error, ClientError):
        return _refused(error)
    return None


def is_local(url: str) -> bool:
    """True for an endpoint on this machine (localhost or a loopback address)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unreachable(error: BaseException) -> str:
    url = str(getattr(error, "kwargs", {}).get("endpoint_url") or "the endpoint")
    if is_local(url):
        return f"cannot reach {url}: is `lew local up` running?"
    return (
        f"cannot reach {url} ({type(error).__name__}): no connection to AWS; check the network (and a proxy), "
        "and the region (--region)"
    )


def _refused(error: ClientError) -> str | None:
    details = error.response.get("Error", {})
    code, said = str(details.get("Code", "")), str(details.get("Message", "")).rstrip(".")
    answer = f"{code}: {said}" if said else code
    if code in BAD_CREDENTIAL_CODES:
        return f"AWS does not accept your credentials ({answer}): {CONFIGURE_HINT}"
    if code in EXPIRED_CREDENTIAL_CODES:
        return f"your AWS credentials have expired ({answer}): refresh them (`aws sso login`, or new keys)"
    if code in DENIED_CODES:
        return f"AWS denied {error.operation_name} ({answer}): your credentials need that permission"
    return None
