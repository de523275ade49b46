"""Record objects: spooled to a temporary file line by line, then uploaded in the background.

Memory stays bounded whatever the size of the day: lines go to disk in chunks of about
1 MiB, an object rolls over at ``max_object_bytes``, and at most one finished object waits
for its upload while the next one is being written.
"""

from __future__ import annotations

import hashlib
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from boto3.s3.transfer import TransferConfig

from include.drain.manifest import FileEntry

CHUNK_BYTES = 1 << 20
TRANSFER = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=16 << 20, max_concurrency=4)


def object_name(partition: int, first_offset: int, last_offset: int) -> str:
    """Name of an object holding offsets ``first..last`` of a partition (both inclusive)."""
    return f"part-p{partition:04d}-o{first_offset:020d}-{last_offset:020d}.jsonl"


@dataclass
class _Spool:
    """One object being written: a temporary file and its running checksum."""

    partition: int
    file: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile(prefix="drain-"))
    digest: Any = field(default_factory=hashlib.sha256)
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    bytes: int = 0
    count: int = 0
    first_offset: int = -1
    last_offset: int = -1

    def flush(self) -> bytes:
        chunk = b"".join(self.pending)
        self.file.write(chunk)
        self.digest.update(chunk)
        self.pending.clear()
        self.pending_bytes = 0
        return chunk


class ObjectWriter:
    """Writes lines of one partition into rolling objects under ``prefix``; returns their entries.

    Object boundaries depend only on the lines and ``max_object_bytes``, so the same records
    always give the same object names and bytes.
    """

    def __init__(self, s3: Any, bucket: str, prefix: str, max_object_bytes: int, uploads: ThreadPoolExecutor):
        if max_object_bytes <= 0:
            raise ValueError(f"max_object_bytes must be positive, got {max_object_bytes}")
        self._s3, self._bucket, self._prefix = s3, bucket, prefix
        self._max = max_object_bytes
        self._uploads = uploads
        self._in_flight: Future[FileEntry] | None = None
        self._spool: _Spool | None = None
        self._partition_digest: Any = None
        self.entries: list[FileEntry] = []

    def start_partition(self) -> None:
        """Start the running checksum of a new partition's objects."""
        self._partition_digest = hashlib.sha256()

    def partition_sha256(self) -> str:
        return self._partition_digest.hexdigest()

    def add(self, partition: int, offset: int, line: bytes) -> None:
        """Append one line (ending in a newline) for the record at ``offset``."""
        spool = self._spool
        if spool is None:
            spool = self._spool = _Spool(partition, first_offset=offset)
        spool.pending.append(line)
        spool.pending_bytes += len(line)
        spool.bytes += len(line)
        spool.count += 1
        spool.last_offset = offset
        if spool.bytes >= self._max:
            self.close_object()
        elif spool.pending_bytes >= CHUNK_BYTES:
            self._partition_digest.update(spool.flush())

    def close_object(self) -> None:
        """Finish the current object (if any) and hand it to the uploader."""
        spool, self._spool = self._spool, None
        if spool is None:
            return
        self._partition_digest.update(spool.flush())
        spool.file.flush()
        key = self._prefix + object_name(spool.partition, spool.first_offset, spool.last_offset)
        entry = FileEntry(
            key=key, partition=spool.partition, first_offset=spool.first_offset, last_offset=spool.last_offset,
            count=spool.count, bytes=spool.bytes, sha256=spool.digest.hexdigest(),
        )
        self._wait_in_flight()
        self._in_flight = self._uploads.submit(self._upload, spool, entry)

    def _upload(self, spool: _Spool, entry: FileEntry) -> FileEntry:
        try:
            spool.file.seek(0)
            self._s3.upload_fileobj(
                spool.file, self._bucket, entry.key, Config=TRANSFER,
                ExtraArgs={"ContentType": "application/jsonl", "Metadata": {"sha256": entry.sha256}},
            )
        finally:
            spool.file.close()
        return entry

    def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            self.entries.append(future.result())

    def finish(self) -> list[FileEntry]:
        """Close the last object, wait for every upload, return the entries in write order."""
        self.close_object()
        self._wait_in_flight()
        return self.entries

    def abandon(self) -> None:
        """Drop the current object and wait for the upload in flight (errors are the caller's to raise)."""
        if self._spool is not None:
            self._spool.file.close()
            self._spool = None
        if self._in_flight is not None:
            self._in_flight.exception()
            self._in_flight = None
