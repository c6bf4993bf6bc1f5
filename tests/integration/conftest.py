"""An S3-compatible server over real HTTP for the storage and upload tests: moto's server mode
on a free loopback port, one bucket, for the whole session."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from infra.settings import Settings

S3_BUCKET = "portal-test"
S3_REGION = "us-east-1"
S3_KEY_ID = "test-access-key"
S3_SECRET = "test-secret-key"


@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=S3_REGION,
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
        )

    def settings(self, base: Settings) -> Settings:
        return dataclasses.replace(
            base,
            s3_bucket=self.bucket,
            s3_endpoint_url=self.endpoint_url,
            s3_region=S3_REGION,
            s3_access_key_id=S3_KEY_ID,
            s3_secret_access_key=S3_SECRET,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = S3Server(endpoint_url=f"http://127.0.0.1:{port}", bucket=S3_BUCKET)
        s3.client().create_bucket(Bucket=S3_BUCKET)
        yield s3
    finally:
        server.stop()
