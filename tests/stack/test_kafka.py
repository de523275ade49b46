"""Kafka of the local stack is a real broker: what is produced can be consumed back."""

from __future__ import annotations

import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def test_message_produced_is_consumed_back(stack_env, kafka_topics):
    topic = f"{kafka_topics}.pin"
    payload = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    meta = producer.send(topic, value=payload, key=b"k1").get(timeout=10)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"], enable_auto_commit=False)
    tp = TopicPartition(topic, meta.partition)
    consumer.assign([tp])
    consumer.seek(tp, meta.offset)
    records = consumer.poll(timeout_ms=10_000, max_records=1)[tp]
    consumer.close()

    assert [(r.key, r.value) for r in records] == [(b"k1", payload)]


def test_entity_topics_exist_with_configured_partitions(stack_env):
    consumer = KafkaConsumer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    prefix = stack_env["PINTEREST_TOPIC_PREFIX"]
    partitions = {e: consumer.partitions_for_topic(f"{prefix}.{e}") for e in ("pin", "geo", "user")}
    consumer.close()
    assert {e: len(p or ()) for e, p in partitions.items()} == {
        e: int(stack_env["KAFKA_TOPIC_PARTITIONS"]) for e in ("pin", "geo", "user")
    }
