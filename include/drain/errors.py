"""Errors of the drain and the quality gate: each names what is wrong and what to do."""

from __future__ import annotations


class DrainError(RuntimeError):
    """Base class of every failure of a drain."""


class NoIntervalError(DrainError):
    """The run has no data interval (e.g. a manual run without a logical date)."""


class IntervalError(DrainError):
    """The interval is not one whole UTC day (or has no time zone), or the run's logical date is another day's
    midnight."""


class UnknownConfError(DrainError):
    """The run conf holds a key that is no param of the DAG: a misspelt one would silently fall back to its default."""


class TopicError(DrainError):
    """The topic cannot be described (Kafka unreachable or refusing)."""


class MissingTopicError(TopicError):
    """The topic does not exist: a retry will not create it."""


class CompactedTopicError(TopicError):
    """The topic is compacted: compaction deletes records without moving the log start, so no drain can tell whether
    Kafka still holds a whole day."""


class SourceTopicError(DrainError):
    """The raw partition was drained from another topic name: replacing it is the operator's decision."""


class BadManifestError(DrainError):
    """The raw partition's ``_manifest.json`` is not a manifest the drain can read: replacing the partition is the
    operator's decision."""


class MissingBucketError(DrainError):
    """The lake bucket does not exist: a retry will not create it."""


class BucketRefusedError(DrainError):
    """The lake's S3 endpoint refuses the bucket (403: the keys; 400: the name or the request): a retry changes
    neither."""


class KafkaConfigError(DrainError):
    """The Kafka client config lacks ``bootstrap.servers`` or the client library refuses it: a retry changes
    neither."""


class KafkaReadError(DrainError):
    """Kafka failed while the drain read a partition."""


class OpenTransactionError(KafkaReadError):
    """A transaction open in the topic holds back records written after it: a retry reads them once it has ended."""


class DataExpiredError(DrainError):
    """Kafka no longer holds the start of the interval and no raw partition exists to keep."""


class IncompleteDayError(DrainError):
    """A partial day that is over can no longer be completed from Kafka: keeping it as final is a decision."""


class PartitionLockedError(DrainError):
    """Another run holds the lease of the partition (a raw day, or a Spark job's day)."""


class LockLostError(DrainError):
    """This run's lock was taken over before it could commit."""


class QuarantineThresholdError(DrainError):
    """More messages than the configured share were not valid records."""


class QualityGateError(RuntimeError):
    """The quality gate found metrics beyond their thresholds, or a manifest it cannot check."""


class ManifestChangedError(DrainError):
    """A manifest changed while the quality gate read it (another drain committed): a retry checks the new one."""
