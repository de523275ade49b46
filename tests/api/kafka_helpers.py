"""Reading topics back from the real Kafka, independently of the API's code."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord


def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of ``topics``; every topic must exist (an empty answer proves nothing)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        found = {topic: sorted(consumer.partitions_for_topic(topic) or ()) for topic in topics}
        assert all(found.values()), f"topics Kafka does not know: {[t for t, p in found.items() if not p]}"
        return consumer.end_offsets([TopicPartition(t, p) for t, partitions in found.items() for p in partitions])
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning to its current end, in partition then offset order; the topic
    must exist (an empty answer proves nothing)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"a topic Kafka does not know: {topic}"
        ends = consumer.end_offsets(partitions)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            for tp, batch in consumer.poll(timeout_ms=5_000).items():
                records.extend(r for r in batch if r.offset < ends[tp])
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()
