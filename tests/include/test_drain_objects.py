"""Record objects on the stack's MinIO: a spooled object above the multipart threshold arrives whole."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from boto3.s3.transfer import TransferConfig

from include.drain import objects

MIB = 1 << 20


def test_an_object_above_the_multipart_threshold_is_uploaded_in_parts_with_its_exact_bytes(
    s3, scratch_bucket, monkeypatch
):
    # S3's smallest part is 5 MiB: 12 MiB of lines go up in three parts
    monkeypatch.setattr(objects, "TRANSFER", TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB))
    lines = [b'{"offset": %d, "pad": "%s"}\n' % (i, b"x" * 1000) for i in range(12 * 1024)]
    with ThreadPoolExecutor(1) as uploads:
        writer = objects.ObjectWriter(s3, scratch_bucket, "raw/", max_object_bytes=64 * MIB, uploads=uploads)
        writer.extend(3, list(range(len(lines))), lines)
        (entry,) = writer.finish()

    expected = b"".join(lines)
    stored = s3.get_object(Bucket=scratch_bucket, Key=entry.key)
    assert stored["ETag"].strip('"').endswith("-3")  # a multipart upload's ETag counts its parts
    assert stored["Body"].read() == expected
    assert (entry.bytes, entry.count, entry.sha256) == (len(expected), len(lines), hashlib.sha256(expected).hexdigest())
