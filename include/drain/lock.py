"""A lease on one partition of the lake, held in S3 with conditional writes, so two runs never write it at once.

The drain holds one on each raw day it writes; the Spark jobs hold one on each clean or analytics day
(``spark_jobs.lease``), whose folders Spark's overwrite deletes, so theirs live under ``_locks/``.

The lock object is created with ``If-None-Match: *`` (only one creator wins), renewed by a
heartbeat with ``If-Match: <our ETag>`` and checked once more just before the manifest is
committed. A lease that has expired (its holder died) is taken over with ``If-Match`` on the
ETag that was read, so of two runs racing for it exactly one wins. A later try of the same run
first waits out the lease of the earlier try, which may still be running (a try Airflow gave
up on is not always dead): if that try renews it meanwhile, the later try is refused. A lock made
with ``wait_seconds`` keeps asking for a refused lease, every few seconds, until that time is up
(the Spark jobs, whose days another run can hold for longer than Airflow's retries last); waiting
out an earlier try of its own run can take up to the lease's TTL past it.

A lease lost while held (renewals failed for longer than its TTL, and another run took it over)
is never lost silently: ``renew()`` raises LockLostError, and leaving the ``with`` block raises
it too unless ``renew()`` has already raised it to the holder.

Expiry is judged by the store's clock, never a worker's: a lease is expired when the store's
``Date`` on reading it is more than its TTL (plus one second, the headers' resolution) after its
``Last-Modified``. A worker whose clock runs ahead cannot take over a live lease.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from include.drain.errors import LockLostError, PartitionLockedError
from include.drain.s3_errors import is_conflict, is_missing

log = logging.getLogger(__name__)

HEADER_RESOLUTION_S = 1.0  # Date and Last-Modified are whole seconds
WAIT_POLL_SECONDS = 5.0  # how often a waiting lock asks again
WAIT_NOTE_SECONDS = 60.0  # how often it says it is still waiting


@dataclass(frozen=True)
class Holder:
    """The lease as read: its ETag, its content, and its age by the store's clock."""

    etag: str
    owner: str | None
    attempt: int | None
    ttl_seconds: float
    age_seconds: float
    nonce: str | None = None

    @property
    def remaining_seconds(self) -> float:
        """How long until the lease has surely expired (0 when it has)."""
        return max(0.0, self.ttl_seconds + HEADER_RESOLUTION_S - self.age_seconds)


def age_seconds(last_modified: datetime, date_header: str) -> float:
    """Seconds from ``last_modified`` to the store's ``Date`` header of the same reply."""
    return (parsedate_to_datetime(date_header) - last_modified).total_seconds()


class PartitionLock:
    """Context manager: hold the lease on ``key`` for ``owner`` while the body runs."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        owner: str,
        ttl_seconds: float,
        attempt: int = 1,
        wait_seconds: float = 0.0,
        waiting_since: float | None = None,
    ):
        if ttl_seconds <= 0:
            raise ValueError(f"lock ttl must be positive, got {ttl_seconds}")
        if wait_seconds < 0:
            raise ValueError(f"lock wait must not be negative, got {wait_seconds}")
        self._s3, self._bucket, self._key, self._owner = s3, bucket, key, owner
        self._attempt = attempt
        self._ttl = ttl_seconds
        self._wait = wait_seconds
        self._waiting_since = waiting_since  # time.monotonic() a wait shared with other leases began
        self._etag: str | None = None
        self._nonce: str | None = None  # of the last lease this run wrote
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._lost: str | None = None
        self._told = False  # whether renew() or release() has raised the loss to the holder
        self._heartbeat: threading.Thread | None = None

    def _body(self) -> bytes:
        # the nonce gives every renewal a new ETag, which is how a waiting try sees that the lease is still renewed
        self._nonce = uuid.uuid4().hex
        lease = {"owner": self._owner, "attempt": self._attempt, "ttl_seconds": self._ttl, "nonce": self._nonce}
        return json.dumps(lease).encode()

    def _put(self, **condition: str) -> str:
        reply = self._s3.put_object(Bucket=self._bucket, Key=self._key, Body=self._body(), **condition)
        return reply["ETag"]

    def acquire(self) -> None:
        """Take the lease, asking again for up to ``wait_seconds`` (from ``waiting_since``, else now) while another
        run holds it; then raise PartitionLockedError naming who holds it and how long this run waited."""
        started = time.monotonic() if self._waiting_since is None else self._waiting_since
        deadline, next_note = started + self._wait, started
        while True:
            try:
                return self._acquire_once()
            except PartitionLockedError as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    if self._wait:  # the time waited: waiting out another try of this run can take its TTL more
                        waited = time.monotonic() - started
                        raise PartitionLockedError(f"{exc} (this run waited {waited:.0f}s for it)") from exc
                    raise
                if time.monotonic() >= next_note:
                    log.warning("waiting up to %.0fs more for the lease: %s", left, exc)
                    next_note = time.monotonic() + WAIT_NOTE_SECONDS
                time.sleep(min(WAIT_POLL_SECONDS, left))

    def _acquire_once(self) -> None:
        """Take the lease or raise PartitionLockedError naming who holds it."""
        try:
            self._etag = self._put(IfNoneMatch="*")
            return
        except ClientError as exc:
            if not is_conflict(exc):
                raise
        holder = self._read()
        if holder is None:  # released between our two calls: try once more from scratch
            return self._acquire_fresh()
        if self._landed(holder):
            return
        expired = holder.remaining_seconds == 0
        same_run = holder.owner == self._owner
        if not expired and same_run and holder.attempt != self._attempt:
            time.sleep(holder.remaining_seconds)  # a dead try stops renewing
            again = self._read()
            if again is None:
                return self._acquire_fresh()
            if again.etag != holder.etag:
                raise PartitionLockedError(self._still_held_message(holder, again))
            expired = True
        elif not expired and not same_run:
            raise PartitionLockedError(
                f"s3://{self._bucket}/{self._key} is held by {holder.owner!r} for "
                f"{holder.remaining_seconds:.0f}s more: another run is writing this partition; "
                "this run can write it once that run is done"
            )
        try:
            self._etag = self._put(IfMatch=holder.etag)
        except ClientError as exc:
            if is_conflict(exc) and self._landed(self._read()):
                return
            if is_conflict(exc):
                raise PartitionLockedError(
                    f"s3://{self._bucket}/{self._key} was taken over by another run at the same moment"
                ) from exc
            raise
        log.warning(
            "took over the %s lease of %r on s3://%s/%s",
            "expired" if expired else "own",
            holder.owner,
            self._bucket,
            self._key,
        )

    def _still_held_message(self, waited_out: Holder, now: Holder) -> str:
        """Why a try that waited out ``waited_out`` (an earlier try of its run) is refused: ``now`` holds the lease."""
        where = f"s3://{self._bucket}/{self._key}"
        if now.owner == self._owner:
            return (
                f"{where} is still renewed by try {now.attempt} of this run ({self._owner!r}): that try is still "
                "writing; this try can write once it is done"
            )
        return (
            f"{where} was taken by {now.owner!r} while this try waited out try {waited_out.attempt} of this run: "
            "another run is writing this partition; this run can write it once that run is done"
        )

    def _read(self) -> Holder | None:
        """The lease as it is now, or None when there is none."""
        try:
            reply = self._s3.get_object(Bucket=self._bucket, Key=self._key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        lease = json.loads(reply["Body"].read())
        return Holder(
            etag=reply["ETag"],
            owner=lease.get("owner"),
            attempt=lease.get("attempt"),
            ttl_seconds=float(lease.get("ttl_seconds", self._ttl)),  # a lease from before ttl_seconds: ours
            age_seconds=age_seconds(reply["LastModified"], reply["ResponseMetadata"]["HTTPHeaders"]["date"]),
            nonce=lease.get("nonce"),
        )

    def _landed(self, holder: Holder | None) -> bool:
        """Whether ``holder`` is the lease this run wrote last (a write whose reply was lost, and whose retry by
        the client was refused); if so it is ours."""
        if holder is None or holder.nonce != self._nonce:
            return False
        self._etag = holder.etag
        return True

    def _acquire_fresh(self) -> None:
        try:
            self._etag = self._put(IfNoneMatch="*")
        except ClientError as exc:
            if is_conflict(exc) and self._landed(self._read()):
                return
            if is_conflict(exc):
                raise PartitionLockedError(f"s3://{self._bucket}/{self._key} is held by another run") from exc
            raise

    def renew(self) -> None:
        """Extend the lease; raise LockLostError if it is no longer ours (another run has taken it)."""
        try:
            self._renew()
        except LockLostError:
            self._told = True
            raise

    def _renew(self) -> None:
        with self._guard:
            if self._lost:
                raise LockLostError(self._lost)
            how = self._renewed()
            if how is not None:
                self._lost = self._lost_message(how)
                raise LockLostError(self._lost)

    def _renewed(self) -> str | None:
        """Rewrite the lease with ``If-Match`` on our ETag; None when it is still ours, else how it was lost."""
        try:
            self._etag = self._put(IfMatch=self._etag)
            return None
        except ClientError as exc:
            if not (is_conflict(exc) or is_missing(exc)):
                raise
        current = self._read()
        if self._landed(current):
            return None
        return "it was deleted" if current is None else "another run took it over"

    def _lost_message(self, how: str) -> str:
        return (
            f"lost the lease on s3://{self._bucket}/{self._key}: {how} (this run did not renew it within its "
            f"{self._ttl:.0f}s TTL: a pause, or S3 unreachable); another run may have written the partition "
            "meanwhile, so this run fails and its retry writes it again"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                self._renew()
            except LockLostError:
                log.error("%s; the next renew(), or leaving the lease, raises it", self._lost)
                return
            except Exception:  # a transient S3 error: the next beat or the final renew() decides
                log.exception("renewing the lease on s3://%s/%s failed", self._bucket, self._key)

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours.

        The lease is renewed (``If-Match`` on our ETag) just before it is deleted: MinIO ignores ``If-Match`` on a
        DELETE, and a lease renewed a moment ago cannot be taken over between that check and the delete.

        Raises LockLostError if the lease was lost while held (taken over, or deleted) and the holder has not
        been told yet: another run may have written the partition meanwhile.
        """
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        with self._guard:
            if self._etag is None or (self._lost and self._told):
                return
            if not self._lost:
                how = self._renewed()
                if how is None:
                    self._s3.delete_object(Bucket=self._bucket, Key=self._key)
                    return
                self._lost = self._lost_message(f"{how} before this run released it")
            self._told = True
            raise LockLostError(self._lost)

    def __enter__(self) -> PartitionLock:
        self.acquire()
        self._heartbeat = threading.Thread(target=self._beat, name=f"lease {self._key}", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        """Release the lease; when the body failed, its own error is raised, whatever the release met."""
        try:
            self.release()
        except LockLostError:
            if exc_type is None:
                raise
            log.exception("the body failed, and the lease was lost too")
        except Exception:  # S3 unreachable, most often: the error that stopped the body says what failed first
            if exc_type is None:
                raise
            log.exception(
                "the body failed, and releasing the lease on s3://%s/%s failed too (it expires after its %.0fs TTL)",
                self._bucket,
                self._key,
                self._ttl,
            )
