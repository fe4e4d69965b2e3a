"""`lew.client` with job parameters against moto: sent as metadata, and a manifest for other parameters not taken."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from lew.client import QUEUED, Client
from lew.errors import LewError
from tests.integration.lew.test_client import BUCKET, MANIFEST_OF_S, client

__all__ = ["client"]  # the fixture, shared with test_client.py


def archive(tmp_path: Path) -> Path:
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("s.pov", "sphere {}")
    return path


def test_submit_sends_parameters_as_metadata_and_refuses_what_s3_cannot_carry(client: Client, tmp_path: Path) -> None:
    # WHEN an archive is submitted with parameters from Python
    upload = client.submit(archive(tmp_path), parameters={"width": 320, "antialias": 0.3})

    # THEN the object carries them as lew-param-* metadata, and the upload knows them
    head = client.s3.head_object(Bucket=BUCKET, Key="incoming/s.zip")
    assert head["Metadata"] == {"lew-param-width": "320", "lew-param-antialias": "0.3"}
    assert upload.parameters == {"antialias": "0.3", "width": "320"}
    # AND too large parameters are refused before anything is uploaded
    with pytest.raises(LewError, match="more than S3's limit of 2048 bytes"):
        client.submit(archive(tmp_path), name="t.zip", parameters={"label": "x" * 2100})
    assert "Contents" not in client.s3.list_objects_v2(Bucket=BUCKET, Prefix="incoming/t")


def test_state_does_not_take_a_success_for_other_parameters_as_this_uploads(client: Client, tmp_path: Path) -> None:
    # GIVEN the same bytes, processed before with width=640, now uploaded with width=320 (the same ETag)
    upload = client.submit(archive(tmp_path), parameters={"width": 320})
    older = {
        "status": "succeeded",
        "source": {"key": "incoming/s.zip", "etag": upload.etag},
        "parameters": {"width": "640"},
    }
    client.s3.put_object(Bucket=BUCKET, Key=MANIFEST_OF_S, Body=json.dumps(older))

    # THEN the job is still queued; its own manifest, with its parameters, is its outcome
    assert client.state(upload).status == QUEUED
    own = {**older, "parameters": {"width": "320"}}
    client.s3.put_object(Bucket=BUCKET, Key=MANIFEST_OF_S, Body=json.dumps(own))
    assert client.state(upload).status == "succeeded"
