"""Typed S3, SQS and ECS clients for anything that can make a boto3 client for a service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


class ServiceClients:
    """The `s3`, `sqs` and `ecs` properties, typed, over the subclass's `client(service)`."""

    def client(self, service: str) -> Any:
        raise NotImplementedError

    @property
    def s3(self) -> S3Client:
        client: S3Client = self.client("s3")
        return client

    @property
    def sqs(self) -> SQSClient:
        client: SQSClient = self.client("sqs")
        return client

    @property
    def ecs(self) -> ECSClient:
        client: ECSClient = self.client("ecs")
        return client
