"""Record objects: spooled to a temporary file line by line, then uploaded in the background.

Memory stays bounded whatever the size of the day: lines go to disk in chunks of about
1 MiB, an object rolls over at ``max_object_bytes``, and at most one finished object waits
for its upload while the next one is being written.

An object is named by its partition, its offset range and the start of its SHA-256 (known once its spool file
is written, before the upload): the same bytes always get the same name, and other bytes (a re-drain whose
validation quarantines a record the earlier drain kept) get another one, so a re-drain never changes an object
that a committed manifest lists.
"""

from __future__ import annotations

import hashlib
import tempfile
from bisect import bisect_left
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import accumulate
from typing import IO, Any

from boto3.s3.transfer import TransferConfig

from include.drain.manifest import FileEntry

CHUNK_BYTES = 1 << 20
TRANSFER = TransferConfig(multipart_threshold=32 << 20, multipart_chunksize=16 << 20, max_concurrency=4)


NAME_HASH_CHARS = 16  # hex digits of the object's SHA-256 in its name: 64 bits


def object_name(partition: int, first_offset: int, last_offset: int, sha256: str) -> str:
    """Name of an object holding offsets ``first..last`` of a partition (both inclusive) whose bytes have the
    SHA-256 ``sha256`` (hex); names sort by partition, then offset."""
    if len(sha256) < NAME_HASH_CHARS:
        raise ValueError(f"sha256 must be a SHA-256 hex digest (64 characters), got {sha256!r}")
    return f"part-p{partition:04d}-o{first_offset:020d}-{last_offset:020d}-{sha256[:NAME_HASH_CHARS]}.jsonl"


@dataclass
class _Spool:
    """One object being written: a temporary file and its running checksum."""

    partition: int
    # a file without a name (O_TMPFILE), so a killed drain leaves nothing behind; it is uploaded through its path
    # in /proc/self/fd because s3transfer reads each multipart part lazily from a path (parts of a file object
    # are buffered in memory)
    file: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile(prefix="drain-"))  # noqa: SIM115
    digest: Any = field(default_factory=hashlib.sha256)
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    bytes: int = 0
    count: int = 0
    first_offset: int = -1
    last_offset: int = -1

    def flush(self) -> None:
        chunk = b"".join(self.pending)
        self.file.write(chunk)
        self.digest.update(chunk)
        self.pending.clear()
        self.pending_bytes = 0


class ObjectWriter:
    """Writes lines of one partition into rolling objects under ``prefix``; returns their entries.

    Object boundaries depend only on the lines and ``max_object_bytes``, so the same records
    always give the same object names and bytes; other bytes for the same offsets give another name.
    """

    def __init__(self, s3: Any, bucket: str, prefix: str, max_object_bytes: int, uploads: ThreadPoolExecutor):
        if max_object_bytes <= 0:
            raise ValueError(f"max_object_bytes must be positive, got {max_object_bytes}")
        self._s3, self._bucket, self._prefix = s3, bucket, prefix
        self._max = max_object_bytes
        self._uploads = uploads
        self._in_flight: Future[FileEntry] | None = None
        self._spool: _Spool | None = None
        self.entries: list[FileEntry] = []

    def extend(self, partition: int, offsets: list[int], lines: list[bytes]) -> None:
        """Append lines (each ending in a newline) of the records at ``offsets``, rolling objects as they fill.

        An object is closed right after the line that brings it to ``max_object_bytes`` or more.
        """
        done = 0
        while done < len(lines):
            spool = self._spool
            if spool is None:
                spool = self._spool = _Spool(partition, first_offset=offsets[done])
            sizes = list(accumulate(map(len, lines[done:])))
            fits = bisect_left(sizes, self._max - spool.bytes)  # index of the line that fills the object
            take = min(fits + 1, len(sizes))
            spool.pending.extend(lines[done : done + take])
            spool.pending_bytes += sizes[take - 1]
            spool.bytes += sizes[take - 1]
            spool.count += take
            spool.last_offset = offsets[done + take - 1]
            done += take
            if spool.bytes >= self._max:
                self.close_object()
            elif spool.pending_bytes >= CHUNK_BYTES:
                spool.flush()

    def close_object(self) -> None:
        """Finish the current object (if any) and hand it to the uploader."""
        spool, self._spool = self._spool, None
        if spool is None:
            return
        spool.flush()
        spool.file.flush()
        digest = spool.digest.hexdigest()
        entry = FileEntry(
            key=self._prefix + object_name(spool.partition, spool.first_offset, spool.last_offset, digest),
            partition=spool.partition,
            first_offset=spool.first_offset,
            last_offset=spool.last_offset,
            count=spool.count,
            bytes=spool.bytes,
            sha256=digest,
        )
        self._wait_in_flight()
        self._in_flight = self._uploads.submit(self._upload, spool, entry)

    def _upload(self, spool: _Spool, entry: FileEntry) -> FileEntry:
        try:
            self._s3.upload_file(
                f"/proc/self/fd/{spool.file.fileno()}",
                self._bucket,
                entry.key,
                Config=TRANSFER,
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
