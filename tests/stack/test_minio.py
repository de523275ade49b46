"""MinIO of the local stack is a real S3 server that keeps what it is given."""

from __future__ import annotations

import os


def test_object_put_is_read_back(s3, scratch_bucket):
    body = os.urandom(70_000)
    s3.put_object(Bucket=scratch_bucket, Key="a/b/blob.bin", Body=body)
    assert s3.get_object(Bucket=scratch_bucket, Key="a/b/blob.bin")["Body"].read() == body


def test_lake_bucket_exists(s3, stack_env):
    assert stack_env["LAKE_BUCKET"] in {b["Name"] for b in s3.list_buckets()["Buckets"]}
