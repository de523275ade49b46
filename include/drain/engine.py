"""The drain: copy exactly one UTC day of a Kafka topic into ``raw/<entity>/dt=<day>/``, idempotently.

Steps, under a lease on the partition (see ``lock``):

1. plan: once every transaction open in the topic has ended, per Kafka partition the offsets from
   the first record at the interval start to the end of what can be read (the high watermark, as no
   transaction is open any more; a record of the day written after later days' records is still found);
2. refuse a day drained from another topic name; if Kafka may no longer hold all of the interval
   (retention, or a recreated topic that lacks offsets the existing manifest lists), keep the
   existing raw partition and rewrite its ``_SUCCESS`` (or fail with DataExpiredError when there
   is none);
3. stream every record timestamped in ``[start, end)`` to objects named by partition, offset
   range and the start of their SHA-256; invalid messages go to ``quarantine/``. A day committed
   before stays in service: an object of the same name holds the same bytes, and other bytes get
   another name (see ``objects``);
4. commit: write ``_manifest.json`` if it is still the one read in step 2 (a conditional write,
   so a run that stalled past its lease cannot overwrite another run's commit), write ``_SUCCESS``,
   then, if the lease is still this run's, delete objects no manifest lists; if it is not, fail
   (another run may have committed since). The previous manifest's ``_dq.json`` stays: it names
   that manifest's SHA-256, so the Spark clean job does not take it for the new one.

Object names and bytes depend only on the records, so reruns rewrite identical objects.
The engine knows nothing of Airflow: it takes an S3 client, a Kafka client config (``kafka_reader.ClientConfig``:
a connection's librdkafka properties, or bootstrap servers alone) and names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from include import lake
from include.drain.errors import (
    BadManifestError,
    BucketRefusedError,
    DataExpiredError,
    IncompleteDayError,
    LockLostError,
    MissingBucketError,
    QuarantineThresholdError,
    SourceTopicError,
    TopicError,
)
from include.drain.interval import Interval, Status, epoch_ms
from include.drain.kafka_log import log_held_back
from include.drain.kafka_reader import (
    ClientConfig,
    PartitionPlan,
    await_open_transactions,
    client_config,
    make_admin,
    make_consumer,
    plan_partitions,
    read_range,
    refuse_compacted,
    retention_floor_ms,
    topic_configs,
    topic_id,
)
from include.drain.lines import batch_lines, validator
from include.drain.lock import PartitionLock
from include.drain.manifest import (
    AcceptedPartial,
    FileEntry,
    Manifest,
    PartitionSummary,
    QuarantineSummary,
    partition_sha256,
    read_manifest,
)
from include.drain.objects import ObjectWriter
from include.drain.s3_errors import is_conflict, is_missing, stored_size
from include.records import MODELS, Entity

log = logging.getLogger(__name__)

CONTROL_NAMES = frozenset({lake.MANIFEST_NAME, lake.SUCCESS_NAME, lake.DQ_NAME, lake.LOCK_NAME})


@dataclass(frozen=True)
class DrainSettings:
    """Tunables of a drain, all with production defaults."""

    lateness_grace: timedelta = timedelta(minutes=10)
    max_quarantine_share: float = 0.01
    max_object_bytes: int = 128 << 20
    lock_ttl_seconds: float = 120.0
    lease_wait_seconds: float = 0.0  # how long to wait while another run holds the day's lease (0: refuse at once)
    accept_partial: bool = False  # keep a partial day Kafka can no longer complete as final
    transaction_wait_seconds: float = 60.0  # for transactions open in the topic to end before planning

    def __post_init__(self) -> None:
        if self.lateness_grace < timedelta(0):
            raise ValueError(f"lateness_grace must not be negative, got {self.lateness_grace}")
        if not 0.0 <= self.max_quarantine_share <= 1.0:
            raise ValueError(f"max_quarantine_share must be within [0, 1], got {self.max_quarantine_share}")
        if self.max_object_bytes <= 0:
            raise ValueError(f"max_object_bytes must be positive, got {self.max_object_bytes}")
        if self.lease_wait_seconds < 0:
            raise ValueError(f"lease_wait_seconds must not be negative, got {self.lease_wait_seconds}")


@dataclass(frozen=True)
class DrainRequest:
    """What to drain: one entity's topic, for one interval, into one bucket, on behalf of one run."""

    entity: Entity
    topic: str
    bucket: str
    interval: Interval
    run_id: str
    settings: DrainSettings = field(default_factory=DrainSettings)
    attempt: int = 1  # the Airflow try number: a later try waits out an earlier try's lease

    def __post_init__(self) -> None:
        if self.entity not in MODELS:
            raise ValueError(f"unknown entity {self.entity!r}: expected one of {sorted(MODELS)}")
        if not self.run_id:
            raise ValueError("run_id must not be empty: it identifies the run in the manifest and the lock")


@dataclass(frozen=True)
class DrainResult:
    """What a drain did: ``drained`` a new manifest, or ``kept_existing`` because Kafka no longer holds all of the
    interval (retention, or a recreated topic lacking offsets the existing manifest lists)."""

    outcome: Literal["drained", "kept_existing"]
    manifest_key: str
    status: Status
    record_count: int
    quarantined: int
    message: str


@dataclass
class _PartitionCounts:
    kept: int = 0
    quarantined: int = 0
    outside: int = 0
    late: int = 0
    bytes: int = 0
    first: int | None = None
    last: int | None = None


def _drain_partition(
    consumer: Consumer,
    topic: str,
    plan: PartitionPlan,
    interval: Interval,
    entity: Entity,
    records: ObjectWriter,
    quarantine: ObjectWriter,
) -> _PartitionCounts:
    """Stream one partition's range: in-interval valid records to ``records``, invalid ones to ``quarantine``."""
    validate = validator(entity)
    start_ms, end_ms, p = interval.start_ms, interval.end_ms, plan.partition
    counts = _PartitionCounts()
    for batch in read_range(consumer, topic, plan):
        # one look at the timestamp first: past the day, most of a batch is outside it
        stamps = [m.timestamp()[1] for m in batch]
        inside = [
            (m.offset(), ts, m.key(), m.value()) for m, ts in zip(batch, stamps, strict=True) if start_ms <= ts < end_ms
        ]
        counts.outside += len(batch) - len(inside)
        if inside and inside[-1][0] >= plan.late_from:
            counts.late += sum(1 for row in inside if row[0] >= plan.late_from)
        out = batch_lines(p, inside, validate)
        if out.quarantine_lines:
            quarantine.extend(p, out.quarantine_offsets, out.quarantine_lines)
            counts.quarantined += len(out.quarantine_lines)
        if out.lines:
            records.extend(p, out.offsets, out.lines)
            counts.kept += len(out.lines)
            counts.bytes += sum(map(len, out.lines))
            if counts.first is None:
                counts.first = out.offsets[0]
            counts.last = out.offsets[-1]
    records.close_object()
    quarantine.close_object()
    return counts


def _delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    for i in range(0, len(keys), 1000):
        reply = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
        )
        if reply.get("Errors"):
            raise RuntimeError(f"deleting stale objects failed: {reply['Errors'][:3]}")


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def stale_keys(listed: list[str], keep: set[str]) -> list[str]:
    """Keys under the partition that neither the manifest lists nor are control files."""
    return sorted(k for k in listed if k not in keep and k.rsplit("/", 1)[-1] not in CONTROL_NAMES)


def start_lost(plans: list[PartitionPlan]) -> list[str]:
    """The partitions whose log may start inside the interval (retention), each as ``[p] starts at offset N``."""
    return [f"[{p.partition}] starts at offset {p.log_start}" for p in plans if not p.start_held]


def lost_partitions(plans: list[PartitionPlan], existing: Manifest | None, current_topic_id: str) -> list[str]:
    """Why Kafka may no longer hold all of the interval, per partition (empty when it holds it all).

    A partition has lost records when its log may start inside the interval (retention), or, for
    a day already drained (from this topic name: see ``refuse_other_source``), when the topic is not
    the one drained (recreated: another topic id, its offsets name other records), or Kafka no longer
    has offsets the existing manifest lists: deleted below the log start, or beyond the high
    watermark of a topic that was reset.
    """
    reasons = start_lost(plans)
    if existing is None:
        return reasons
    if existing.topic_id is not None and existing.topic_id != current_topic_id:
        return [
            f"the topic was recreated: its id is {current_topic_id}, the raw partition was drained from "
            f"{existing.topic_id} (delete the raw partition to drain the new topic's records instead)"
        ]
    by_partition = {plan.partition: plan for plan in plans}
    for held in existing.partitions:
        plan = by_partition.get(held.partition)
        if held.first_offset is None or held.last_offset is None:
            continue
        if plan is None:
            reasons.append(f"[{held.partition}] no longer exists")
        elif not plan.start_held:
            continue  # already given above
        elif held.first_offset < plan.log_start:
            reasons.append(
                f"[{held.partition}] starts at offset {plan.log_start}, after drained offset {held.first_offset}"
            )
        elif held.last_offset >= plan.high_watermark:
            reasons.append(
                f"[{held.partition}] ends at offset {plan.high_watermark}, before drained offset {held.last_offset} "
                "(topic recreated or reset?)"
            )
    return reasons


def refuse_other_source(existing: Manifest | None, topic: str, bucket: str, raw_prefix: str) -> None:
    """Raise SourceTopicError when the day was drained from another topic name.

    Replacing it would delete records that may exist nowhere else once that topic's retention has
    passed; a run pointed at another topic by mistake (a ``topic_prefix`` without its own
    ``lake_bucket``) must not do that.
    """
    if existing is not None and existing.topic != topic:
        raise SourceTopicError(
            f"s3://{bucket}/{raw_prefix} holds {existing.record_count} records drained from topic "
            f"{existing.topic}, not {topic}: drain {topic} into another lake bucket, or delete that raw "
            "partition first to replace it"
        )


def _retention_floor(admin: AdminClient, topic: str, now: datetime) -> tuple[int | None, TopicError | None]:
    """The topic's ``retention_floor_ms`` (CompactedTopicError for a compacted topic); None (the offset checks
    alone) when its configuration is not readable, with the error that said so."""
    try:
        configs = topic_configs(admin, topic)
    except TopicError as exc:
        log.warning("%s: judging retention by offsets alone", exc)
        return None, exc
    refuse_compacted(configs, topic)
    return retention_floor_ms(configs, epoch_ms(now)), None


def refuse_unjudged_loss(plans: list[PartitionPlan], unreadable: TopicError | None, topic: str, day: date) -> None:
    """Raise a TopicError (retried) when offsets alone say records of the day may be gone from a partition but the
    topic's configuration, which could show that time retention kept them, was not readable: a verdict of expiry
    (permanent) or a kept partial day must not rest on a failed look-up."""
    unsure = start_lost(plans)
    if unreadable is not None and unsure:
        raise TopicError(
            f"by its offsets alone, Kafka may have lost records of {day} in {topic} ({'; '.join(unsure)}), and "
            f"whether time retention kept them cannot be told: {unreadable}; a retry asks again (reading a "
            "topic's configuration needs the DescribeConfigs permission on it)"
        )


_REFUSALS = {
    400: "it refuses the bucket's name or the request: check lake_bucket (MinIO refuses some names S3 takes, such as "
    "one with '.-') and the region",
    403: "check the lake's keys (the aws_default connection, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and "
    "that they may read and write the bucket",
}
"""What a bare HEAD status of the bucket means (HEAD has no body to say more)."""


def _require_bucket(s3: Any, bucket: str) -> None:
    """Raise MissingBucketError when the bucket does not exist, BucketRefusedError when the endpoint refuses it;
    both name the bucket."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if is_missing(exc):  # HEAD has no body: a missing bucket is a bare 404
            raise MissingBucketError(
                f"bucket {bucket!r} does not exist at the lake's S3 endpoint: create it, or give the run "
                "the lake_bucket of an existing one"
            ) from exc
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in _REFUSALS:
            raise BucketRefusedError(
                f"the lake's S3 endpoint {s3.meta.endpoint_url} answered {status} to a HEAD of bucket {bucket!r}: "
                f"{_REFUSALS[status]}"
            ) from exc
        raise


def _existing_manifest(s3: Any, bucket: str, key: str) -> tuple[Manifest | None, str | None]:
    """The committed manifest and its ETag, or ``(None, None)`` when there is none."""
    try:
        reply = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            return None, None
        raise
    try:
        return read_manifest(reply["Body"].read(), f"s3://{bucket}/{key}"), reply["ETag"]
    except ValueError as exc:
        raise BadManifestError(str(exc)) from exc


def _accept_partial(
    s3: Any,
    request: DrainRequest,
    lock: PartitionLock,
    existing: Manifest,
    existing_etag: str | None,
    reason: str,
    at: datetime,
) -> Manifest:
    """Mark a partial day that is over, and that Kafka can no longer complete, as final, if the run asks to.

    Otherwise raise IncompleteDayError: the analytics of later days wait for every earlier day to be complete.
    """
    raw_prefix = lake.partition_prefix("raw", request.entity, request.interval.day)
    if not request.settings.accept_partial:
        raise IncompleteDayError(
            f"s3://{request.bucket}/{raw_prefix} is partial ({existing.record_count} records, drained while "
            f"{request.interval.day} was open) and Kafka no longer holds all of that day in {request.topic} "
            f"({reason}): it can never be completed, and the analytics of later days wait for it. To keep it as "
            "final, rerun this day with accept_partial=true"
        )
    accepted = existing.model_copy(
        update={"accepted_partial": AcceptedPartial(run_id=request.run_id, accepted_at=at, reason=reason)}
    )
    lock.renew()
    _commit_manifest(
        s3, request.bucket, lake.manifest_key(request.entity, request.interval.day), accepted, existing_etag
    )
    log.warning("accepted s3://%s/%s as final although partial: %s", request.bucket, raw_prefix, reason)
    return accepted


def _commit_manifest(s3: Any, bucket: str, key: str, manifest: Manifest, read_etag: str | None) -> None:
    """Write the manifest only if it is still the one read before draining (none: still absent).

    This fences the commit: the lease keeps two runs apart while they keep renewing, but a run that
    stalls after its last renewal must not overwrite what another run committed meanwhile (and
    whose stale-object cleanup may have removed this run's objects).
    """
    condition = {"IfMatch": read_etag} if read_etag else {"IfNoneMatch": "*"}
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=manifest.to_json(), ContentType="application/json", **condition)
    except ClientError as exc:
        if not (is_conflict(exc) or is_missing(exc)):  # missing: If-Match on a manifest deleted meanwhile
            raise
        current, _ = _existing_manifest(s3, bucket, key)
        if current == manifest:
            return  # this commit landed, and the client's retry of it was refused
        raise LockLostError(
            f"s3://{bucket}/{key} was replaced or deleted while this run was draining (another run committed, "
            "or an operator removed it): nothing was committed by this run; a retry drains the day again"
        ) from exc


def _not_as_listed(s3: Any, bucket: str, entries: Iterable[FileEntry]) -> list[str]:
    """What differs between the listed objects and the stored ones: each missing one, each of another size."""
    found = []
    for entry in entries:
        size = stored_size(s3, bucket, entry.key)
        if size is None:
            found.append(f"{entry.key} is missing")
        elif size != entry.bytes:
            found.append(f"{entry.key} holds {size} bytes, the manifest says {entry.bytes}")
    return found


def _keep_existing(s3: Any, bucket: str, raw_prefix: str, kept: Manifest) -> str:
    """Check that the kept partition's records are whole (every record object its manifest lists is stored, at the
    size listed), then (re)write its ``_SUCCESS`` (an older drain may have removed it).

    A quarantine object not as listed (a lifecycle rule expired it, say) does not stop the day: no reader uses the
    quarantine, and Kafka cannot give its messages back either. Returns what to add to the task's message about it.
    """
    damaged = _not_as_listed(s3, bucket, kept.files)
    if damaged:
        raise DataExpiredError(
            f"the raw partition s3://{bucket}/{raw_prefix} does not hold {len(damaged)} objects as its manifest "
            f"lists them (first: {damaged[0]}) and Kafka no longer holds its records: it cannot be repaired"
        )
    quarantine = _not_as_listed(s3, bucket, kept.quarantine.files)
    s3.put_object(Bucket=bucket, Key=raw_prefix + lake.SUCCESS_NAME, Body=b"")
    if not quarantine:
        return ""
    return (
        f"; {len(quarantine)} of its {len(kept.quarantine.files)} quarantine objects are not as its manifest lists "
        f"them (first: {quarantine[0]}): those invalid messages are lost, its records are whole"
    )


def drain(
    s3: Any, kafka: ClientConfig, request: DrainRequest, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> DrainResult:
    """Drain ``request.interval`` of ``request.topic`` into the raw partition; see the module docstring.

    ``kafka``: the Kafka client config (librdkafka properties with ``bootstrap.servers``), or bootstrap servers
    alone; KafkaConfigError when it has no ``bootstrap.servers`` or the client library refuses it.
    """
    interval, entity, bucket, settings = request.interval, request.entity, request.bucket, request.settings
    day = interval.day
    raw_prefix = lake.partition_prefix("raw", entity, day)
    quarantine_prefix = lake.partition_prefix("quarantine", entity, day)
    manifest_key = lake.manifest_key(entity, day)
    status = interval.status_at(now(), settings.lateness_grace)
    grace_ms = round(settings.lateness_grace.total_seconds() * 1000)

    client_config(kafka)  # no bootstrap.servers: KafkaConfigError before the lake is touched
    _require_bucket(s3, bucket)
    lease = PartitionLock(
        s3,
        bucket,
        lake.lock_key(entity, day),
        request.run_id,
        settings.lock_ttl_seconds,
        request.attempt,
        wait_seconds=settings.lease_wait_seconds,
    )
    with lease as lock:
        admin = make_admin(kafka)  # first: it needs no closing when the consumer is refused
        consumer = make_consumer(kafka)
        try:
            floor_ms, unreadable = _retention_floor(admin, request.topic, now())
            await_open_transactions(admin, consumer, request.topic, settings.transaction_wait_seconds)
            plans = plan_partitions(consumer, request.topic, interval.start_ms, interval.end_ms, grace_ms, floor_ms)
            refuse_unjudged_loss(plans, unreadable, request.topic, day)
            drained_topic_id = topic_id(admin, request.topic)
            existing, existing_etag = _existing_manifest(s3, bucket, manifest_key)
            refuse_other_source(existing, request.topic, bucket, raw_prefix)
            lost = lost_partitions(plans, existing, drained_topic_id)
            if lost:
                where = "; ".join(lost)
                if existing is None:
                    raise DataExpiredError(
                        f"the records of {day} have expired from Kafka topic {request.topic} ({where}) and no raw "
                        f"partition s3://{bucket}/{raw_prefix} exists: this day cannot be drained any more"
                    )
                quarantine_note = _keep_existing(s3, bucket, raw_prefix, existing)
                if existing.status == "partial" and status == "complete" and existing.accepted_partial is None:
                    existing = _accept_partial(s3, request, lock, existing, existing_etag, where, now())
                message = (
                    f"Kafka no longer holds all of {day} in {request.topic} ({where}); kept the existing raw "
                    f"partition s3://{bucket}/{raw_prefix} ({existing.status}, {existing.record_count} records"
                    f"{', accepted as final' if existing.accepted_partial else ''}) as the source of truth"
                    f"{quarantine_note}"
                )
                log.warning(message)
                return DrainResult(
                    "kept_existing",
                    manifest_key,
                    existing.status,
                    existing.record_count,
                    existing.quarantine.count,
                    message,
                )
            manifest = _write_partition(
                s3, consumer, request, plans, status, drained_topic_id, raw_prefix, quarantine_prefix, now
            )
        finally:
            try:
                consumer.close()
            finally:
                admin.poll(0)  # serves the admin client's queued log lines
                log_held_back()
        lock.renew()  # fails if another run took the lease: then it owns the partition, we commit nothing
        # Every object of the new manifest is stored, so an existing _SUCCESS stays true across the commit.
        _commit_manifest(s3, bucket, manifest_key, manifest, existing_etag)
        # The previous manifest's _dq.json stays: it names that manifest's SHA-256, so no reader takes it for this one.
        s3.put_object(Bucket=bucket, Key=raw_prefix + lake.SUCCESS_NAME, Body=b"")
        keep = {f.key for f in manifest.files} | {f.key for f in manifest.quarantine.files}
        listed = _list_keys(s3, bucket, raw_prefix) + _list_keys(s3, bucket, quarantine_prefix)
        stale = stale_keys(listed, keep)
        try:
            lock.renew()  # a run that took the lease since may be writing objects this listing calls stale
        except LockLostError as exc:
            raise LockLostError(
                f"{exc} (after this run committed s3://{bucket}/{manifest_key}; the {len(stale)} objects that "
                "manifest does not list are left to the next drain)"
            ) from exc
        _delete_keys(s3, bucket, stale)
    message = (
        f"drained {manifest.record_count} {entity} records of {day} ({status}) from {request.topic} into "
        f"s3://{bucket}/{raw_prefix}: {len(manifest.files)} objects, {manifest.quarantine.count} "
        f"quarantined, {len(stale)} stale objects removed"
    )
    log.info(message)
    return DrainResult("drained", manifest_key, status, manifest.record_count, manifest.quarantine.count, message)


def _summary(plan: PartitionPlan, counts: _PartitionCounts, files: list[FileEntry]) -> PartitionSummary:
    """What the manifest says of one Kafka partition: its plan, what was read and its objects' checksum."""
    return PartitionSummary(
        partition=plan.partition,
        log_start_offset=plan.log_start,
        read_from=plan.read_from,
        read_to=plan.read_to,
        late_from=plan.late_from,
        first_offset=counts.first,
        last_offset=counts.last,
        count=counts.kept,
        quarantined=counts.quarantined,
        outside_interval=counts.outside,
        late=counts.late,
        bytes=counts.bytes,
        sha256=partition_sha256(f.sha256 for f in files if f.partition == plan.partition),
    )


def _write_partition(
    s3: Any,
    consumer: Consumer,
    request: DrainRequest,
    plans: list[PartitionPlan],
    status: Status,
    drained_topic_id: str,
    raw_prefix: str,
    quarantine_prefix: str,
    now: Callable[[], datetime],
) -> Manifest:
    """Stream every Kafka partition to objects and build the manifest (not yet written)."""
    settings = request.settings
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload") as uploads:
        records = ObjectWriter(s3, request.bucket, raw_prefix, settings.max_object_bytes, uploads)
        quarantine = ObjectWriter(s3, request.bucket, quarantine_prefix, settings.max_object_bytes, uploads)
        try:
            counts = [
                _drain_partition(consumer, request.topic, plan, request.interval, request.entity, records, quarantine)
                for plan in plans
            ]
            files = records.finish()
            quarantine_files = quarantine.finish()
        except BaseException:
            records.abandon()
            quarantine.abandon()
            raise
    summaries = [_summary(plan, drained, files) for plan, drained in zip(plans, counts, strict=True)]
    kept = sum(s.count for s in summaries)
    bad = sum(s.quarantined for s in summaries)
    share = bad / (kept + bad) if kept + bad else 0.0
    if share > settings.max_quarantine_share:
        raise QuarantineThresholdError(
            f"{bad} of {kept + bad} messages of {request.interval.day} in {request.topic} are not valid "
            f"{request.entity} records ({share:.2%} > {settings.max_quarantine_share:.2%}); see "
            f"s3://{request.bucket}/{quarantine_prefix}"
        )
    return Manifest(
        entity=request.entity,
        dt=request.interval.day,
        topic=request.topic,
        topic_id=drained_topic_id,
        interval_start=request.interval.start,
        interval_end=request.interval.end,
        lateness_grace_seconds=settings.lateness_grace.total_seconds(),
        status=status,
        run_id=request.run_id,
        drained_at=now(),
        record_count=kept,
        total_bytes=sum(s.bytes for s in summaries),
        files=files,
        partitions=summaries,
        quarantine=QuarantineSummary(
            count=bad, share=share, max_share=settings.max_quarantine_share, files=quarantine_files
        ),
    )
