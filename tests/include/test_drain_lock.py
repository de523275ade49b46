"""The partition lease on the real MinIO: one holder at a time, takeover only when expired or by the same owner, and
a lease lost while held never lost silently."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest
from botocore.exceptions import EndpointConnectionError

from include.drain.errors import LockLostError, PartitionLockedError
from include.drain.lock import PartitionLock
from tests.waiting import wait_until

KEY = "raw/pin/dt=2024-03-10/_drain.lock"


def test_second_run_is_refused_while_the_first_holds_the_lease(s3, scratch_bucket):
    holder = PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=60)
    with holder, pytest.raises(PartitionLockedError, match="held by 'run-a'"):
        PartitionLock(s3, scratch_bucket, KEY, "run-b", ttl_seconds=60).acquire()
    assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix=KEY).get("KeyCount") == 0


def test_expired_lease_is_taken_over_and_the_old_holder_cannot_commit(s3, scratch_bucket):
    first = PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=0.5)
    first.acquire()
    time.sleep(2.6)  # the holder died: its lease runs out (by the store's clock, whose headers are whole seconds)
    second = PartitionLock(s3, scratch_bucket, KEY, "run-b", ttl_seconds=60)
    second.acquire()
    with pytest.raises(LockLostError, match="another run took it over"):
        first.renew()
    first.release()
    assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix=KEY).get("KeyCount") == 1  # still run-b's
    second.renew()
    second.release()


def test_a_later_try_waits_out_the_lease_of_an_earlier_try_and_refuses_a_live_one(s3, scratch_bucket):
    # renewed every second: a slow store or a starved heartbeat on a busy machine does not let it run out
    live = PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=3.0, attempt=1)
    with live, pytest.raises(PartitionLockedError, match="still renewed by try 1 of this run"):
        PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=60, attempt=2).acquire()
    dead = PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=1.0, attempt=1)
    dead.acquire()  # no heartbeat: as a killed try, it stops renewing
    later = PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=60, attempt=2)
    later.acquire()
    with pytest.raises(LockLostError):
        dead.renew()
    later.release()
    assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix=KEY).get("KeyCount") == 0


class LeaseWrittenBeforeRead:
    """The real S3 client, except that just before its ``nth`` ``get_object`` call the lease is rewritten as
    ``lease``: another holder took it meanwhile."""

    def __init__(self, s3, bucket: str, nth: int, lease: dict) -> None:
        self._s3, self._bucket, self._nth, self._lease = s3, bucket, nth, lease
        self._reads = 0

    def __getattr__(self, name: str):
        call = getattr(self._s3, name)
        if name != "get_object":
            return call

        def read(**kwargs):
            self._reads += 1
            if self._reads == self._nth:
                self._s3.put_object(Bucket=self._bucket, Key=KEY, Body=json.dumps(self._lease).encode())
            return call(**kwargs)

        return read


def test_a_try_refused_after_waiting_out_its_earlier_try_names_whoever_holds_the_lease_now(s3, scratch_bucket):
    PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=1.0, attempt=1).acquire()  # a killed try
    rival = {"owner": "run-b", "attempt": 1, "ttl_seconds": 60, "nonce": "b"}
    taken = LeaseWrittenBeforeRead(s3, scratch_bucket, 2, rival)  # the read after the wait finds run-b's lease
    with pytest.raises(PartitionLockedError) as refused:
        PartitionLock(taken, scratch_bucket, KEY, "run-a", ttl_seconds=60, attempt=2).acquire()
    assert "taken by 'run-b' while this try waited out try 1 of this run" in str(refused.value)
    assert "still renewed" not in str(refused.value)
    renewed = {"owner": "run-a", "attempt": 3, "ttl_seconds": 60, "nonce": "a3"}  # a third try of run-a took it
    s3.put_object(Bucket=scratch_bucket, Key=KEY, Body=json.dumps({**renewed, "attempt": 1, "ttl_seconds": 1.0}))
    taken = LeaseWrittenBeforeRead(s3, scratch_bucket, 2, renewed)
    with pytest.raises(PartitionLockedError, match="still renewed by try 3 of this run"):
        PartitionLock(taken, scratch_bucket, KEY, "run-a", ttl_seconds=60, attempt=2).acquire()


def test_of_many_racing_runs_exactly_one_gets_the_lease(s3, scratch_bucket):
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def contend(owner: str) -> None:
        lock = PartitionLock(s3, scratch_bucket, KEY, owner, ttl_seconds=60)
        barrier.wait()
        try:
            lock.acquire()
            outcomes.append("won")
        except PartitionLockedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=contend, args=(f"run-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]


class RivalBefore:
    """The real S3 client, except that just before its first ``method`` call whose arguments ``match``, another run
    (``rival``) tries to take the lease; ``taken`` says whether it got it."""

    def __init__(self, s3, bucket: str, method: str, owner: str, match=lambda kwargs: True) -> None:
        self._s3, self._method, self._match = s3, method, match
        self.tried = self.taken = False
        self.rival = PartitionLock(s3, bucket, KEY, owner, ttl_seconds=60)

    def __getattr__(self, name: str):
        call = getattr(self._s3, name)
        if name != self._method:
            return call

        def after_the_rival(**kwargs):
            if not self.tried and self._match(kwargs):
                self.tried = True
                with contextlib.suppress(PartitionLockedError):
                    self.rival.acquire()
                    self.taken = True
            return call(**kwargs)

        return after_the_rival


def test_of_two_runs_taking_over_the_same_expired_lease_only_the_first_gets_it(s3, scratch_bucket):
    PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=0.5).acquire()  # no heartbeat: its holder died
    time.sleep(2.6)
    racing = RivalBefore(s3, scratch_bucket, "put_object", "run-c", lambda kwargs: "IfMatch" in kwargs)
    with pytest.raises(PartitionLockedError, match="taken over by another run at the same moment"):
        PartitionLock(racing, scratch_bucket, KEY, "run-b", ttl_seconds=60).acquire()
    assert racing.taken
    lease = json.loads(s3.get_object(Bucket=scratch_bucket, Key=KEY)["Body"].read())
    assert lease["owner"] == "run-c"
    racing.rival.release()


def test_a_worker_clock_far_from_the_stores_cannot_take_over_a_live_lease(s3, scratch_bucket):
    # the lease a run renewed a moment ago on a worker whose clock is an hour behind (an expiry it computed itself
    # would already be past): expiry is judged by the store's clock, so the lease is live
    lease = {"owner": "run-a", "attempt": 1, "ttl_seconds": 60, "expires_at": time.time() - 3600}
    s3.put_object(Bucket=scratch_bucket, Key=KEY, Body=json.dumps(lease).encode())

    with pytest.raises(PartitionLockedError, match=r"held by 'run-a' for \d+s more"):
        PartitionLock(s3, scratch_bucket, KEY, "run-b", ttl_seconds=60).acquire()


class Outage:
    """The real S3 client, except that writes fail as if S3 were unreachable while ``down`` is set: the heartbeat's
    renewals only, or with ``every_write`` every put and delete."""

    def __init__(self, s3, every_write: bool = False) -> None:
        self._s3, self.down, self._every_write = s3, threading.Event(), every_write

    def __getattr__(self, name: str):
        return getattr(self._s3, name)

    def _fails(self, kwargs: dict) -> bool:
        """Whether this write fails now (a renewal is a put with ``If-Match`` from the heartbeat thread)."""
        renewal = "IfMatch" in kwargs and threading.current_thread().name.startswith("lease ")
        return self.down.is_set() and (self._every_write or renewal)

    def put_object(self, **kwargs):
        if self._fails(kwargs):
            raise EndpointConnectionError(endpoint_url="http://s3.unreachable")
        return self._s3.put_object(**kwargs)

    def delete_object(self, **kwargs):
        if self._fails(kwargs):
            raise EndpointConnectionError(endpoint_url="http://s3.unreachable")
        return self._s3.delete_object(**kwargs)


def outlive_the_lease(s3, bucket: str, outage: Outage) -> PartitionLock:
    """While run-a holds the lease, its renewals fail for longer than the lease; run-b takes it over meanwhile."""
    outage.down.set()
    time.sleep(2.6)  # past a 1 s lease by the store's clock, whose headers are whole seconds
    taker = PartitionLock(s3, bucket, KEY, "run-b", ttl_seconds=60)
    taker.acquire()
    return taker


def test_leaving_a_lease_taken_over_meanwhile_raises(s3, scratch_bucket, caplog):
    outage = Outage(s3)
    held = PartitionLock(outage, scratch_bucket, KEY, "run-a", ttl_seconds=1.0)

    with pytest.raises(LockLostError, match="another run took it over before this run released it"), held:
        taker = outlive_the_lease(s3, scratch_bucket, outage)  # S3 still unreachable for run-a's renewals

    assert "renewing the lease" in caplog.text  # the heartbeat's failures were logged, not fatal by themselves
    assert json.loads(s3.get_object(Bucket=scratch_bucket, Key=KEY)["Body"].read())["owner"] == "run-b"  # left alone
    taker.release()


def test_a_holder_releasing_after_its_lease_ran_out_cannot_delete_a_lease_taken_at_that_moment(s3, scratch_bucket):
    racing = RivalBefore(s3, scratch_bucket, "delete_object", "run-b")  # just before the holder's DELETE
    late = PartitionLock(racing, scratch_bucket, KEY, "run-a", ttl_seconds=1.0)
    late.acquire()  # no heartbeat: the holder stalls past its lease, nobody takes it, then it leaves
    time.sleep(2.6)
    late.release()
    # had run-b taken the lease between the holder's check and its DELETE, the DELETE would have removed run-b's
    # lease while run-b writes; the release renews first, so run-b found a live lease and was refused
    assert racing.tried and not racing.taken
    assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix=KEY).get("KeyCount") == 0


def test_a_loss_the_heartbeat_found_is_raised_when_the_lease_is_left(s3, scratch_bucket, caplog):
    outage = Outage(s3)
    held = PartitionLock(outage, scratch_bucket, KEY, "run-a", ttl_seconds=1.0)

    with pytest.raises(LockLostError, match="another run took it over"), held:
        taker = outlive_the_lease(s3, scratch_bucket, outage)
        outage.down.clear()  # S3 is back: the next renewal finds the lease taken over
        wait_until(lambda: "or leaving the lease, raises it" in caplog.text, "the heartbeat to find the loss", 30)
    taker.release()
    assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix=KEY).get("KeyCount") == 0


def test_a_loss_renew_raised_to_the_holder_is_not_raised_again_when_it_leaves(s3, scratch_bucket):
    outage = Outage(s3)
    # the drain's last renewal, after its commit: it handles the loss itself (leaves stale objects) and returns
    with PartitionLock(outage, scratch_bucket, KEY, "run-a", ttl_seconds=1.0) as held:
        taker = outlive_the_lease(s3, scratch_bucket, outage)
        outage.down.clear()
        with pytest.raises(LockLostError, match="another run took it over"):
            held.renew()
    taker.release()


def test_the_bodys_own_error_wins_over_a_lost_lease(s3, scratch_bucket):
    outage = Outage(s3)
    with pytest.raises(ZeroDivisionError), PartitionLock(outage, scratch_bucket, KEY, "run-a", ttl_seconds=1.0):
        taker = outlive_the_lease(s3, scratch_bucket, outage)
        1 / 0  # noqa: B018
    taker.release()


def test_the_bodys_own_error_wins_over_a_release_s3_cannot_answer(s3, scratch_bucket, caplog):
    unreachable = Outage(s3, every_write=True)
    with (
        pytest.raises(OSError, match="upload of part-0 failed"),
        PartitionLock(unreachable, scratch_bucket, KEY, "run-a", ttl_seconds=60),
    ):
        unreachable.down.set()  # S3 goes away: the body's upload fails, and so does the release after it
        raise OSError("upload of part-0 failed")
    assert (
        f"releasing the lease on s3://{scratch_bucket}/{KEY} failed too (it expires after its 60s TTL)" in caplog.text
    )
    assert "Could not connect to the endpoint URL" in caplog.text
    s3.delete_object(Bucket=scratch_bucket, Key=KEY)


def test_a_release_s3_cannot_answer_fails_a_body_that_succeeded(s3, scratch_bucket):
    unreachable = Outage(s3, every_write=True)
    with (
        pytest.raises(EndpointConnectionError),
        PartitionLock(unreachable, scratch_bucket, KEY, "run-a", ttl_seconds=60),
    ):
        unreachable.down.set()
    s3.delete_object(Bucket=scratch_bucket, Key=KEY)


def test_a_waiting_run_takes_the_lease_once_its_holder_releases_it(s3, scratch_bucket):
    holder = PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=60)
    waiter = PartitionLock(s3, scratch_bucket, KEY, "run-b", ttl_seconds=60, wait_seconds=120)
    holder.acquire()
    taken = threading.Event()
    thread = threading.Thread(target=lambda: (waiter.acquire(), taken.set()))
    thread.start()
    try:
        assert not taken.wait(2.0)  # refused while run-a holds it, but still asking
        holder.release()
        assert taken.wait(30)
    finally:
        thread.join(timeout=30)
    assert json.loads(s3.get_object(Bucket=scratch_bucket, Key=KEY)["Body"].read())["owner"] == "run-b"
    waiter.release()


def test_a_waiting_run_gives_up_after_its_wait_naming_the_holder_and_the_wait(s3, scratch_bucket):
    started = time.monotonic()
    with (
        PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=60),
        pytest.raises(PartitionLockedError, match=r"held by 'run-a'.*\(this run waited [23]s for it\)"),
    ):
        PartitionLock(s3, scratch_bucket, KEY, "run-b", ttl_seconds=60, wait_seconds=2).acquire()
    assert time.monotonic() - started >= 2.0
    with pytest.raises(ValueError, match="lock wait must not be negative"):
        PartitionLock(s3, scratch_bucket, KEY, "run-b", ttl_seconds=60, wait_seconds=-1)


def test_a_wait_shared_with_earlier_leases_counts_from_its_start(s3, scratch_bucket):
    """The clean job's three leases share one wait: a later lease gets what is left, and names the whole wait."""
    shared_since = time.monotonic() - 3.0  # earlier leases of the job took 3 s of its 2 s
    with (
        PartitionLock(s3, scratch_bucket, KEY, "run-a", ttl_seconds=60),
        pytest.raises(PartitionLockedError, match=r"held by 'run-a'.*\(this run waited 3s for it\)"),
    ):
        late = PartitionLock(
            s3, scratch_bucket, KEY, "run-b", ttl_seconds=60, wait_seconds=2, waiting_since=shared_since
        )
        late.acquire()  # asked once, not waited on
    assert time.monotonic() - shared_since < 3.5
