"""A real S3 API on 127.0.0.1: moto in server mode, and a bucket of its own for each test."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest


class S3Server:
    """moto's S3 API on a free loopback port, in a thread of the test process."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def __enter__(self) -> S3Server:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()

    @property
    def endpoint(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"


@dataclass(frozen=True)
class Bucket:
    """One empty bucket, and a boto3 client to look into it the way a user would."""

    name: str
    client: Any

    def url(self, prefix: str = "team/zoopm") -> str:
        return f"s3://{self.name}/{prefix}"

    def objects(self) -> dict[str, int]:
        """Every object's key and size."""
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            found |= {item["Key"]: item["Size"] for item in page.get("Contents", [])}
        return found

    def get(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return data

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def uploads_in_progress(self) -> list[str]:
        answer = self.client.list_multipart_uploads(Bucket=self.name)
        return [item["Key"] for item in answer.get("Uploads", [])]


def use_endpoint(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp: Any) -> None:
    """The AWS environment, and only it, pointed at endpoint; no real AWS file is read."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "zoopm-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "zoopm-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def use_s3(server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp: Any) -> Bucket:
    """Points the AWS environment (and only it) at server, as a MinIO user would, and makes a
    new bucket there. No real AWS configuration file is read."""
    import boto3

    use_endpoint(server.endpoint, monkeypatch, tmp)
    name = f"zoopm-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return Bucket(name, client)
