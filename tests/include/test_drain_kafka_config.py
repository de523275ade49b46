"""The drain's Kafka client config: a connection's whole librdkafka config reaches its clients, except the keys the
drain owns, and its secrets stay out of what the drain logs or raises.

The first tests check the pure config functions against values written out here; the last ones drain through the
local stack's Kafka (PLAINTEXT) and MinIO, their expectations computed from what the test produced.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from include import lake
from include.drain import DrainError, KafkaConfigError, drain
from include.drain import kafka_reader as reader
from include.drain.kafka_log import LIBRDKAFKA_LOG
from include.drain.kafka_reader import (
    admin_config,
    client_config,
    consumer_config,
    is_secret_key,
    make_admin,
    make_consumer,
    overridden_keys,
    redact,
    secret_values,
)
from tests.include.test_drain_engine import (
    DAY,
    START_MS,
    as_rows,
    drained_records,
    exists,
    load_manifest,
    pins,
    produce,
    request,
)

# what a SASL/TLS cluster's connection holds (the Kafka provider's convention: the extra is the client config)
CLUSTER = {
    "bootstrap.servers": "b-1.cluster.example:9096,b-2.cluster.example:9096",
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": "SCRAM-SHA-512",
    "sasl.username": "drain-user",
    "sasl.password": "pw-Unit-8hJq2",
    "ssl.ca.location": "/etc/ssl/certs/cluster-ca.pem",
    "client.id": "pinterest-drain",
}
BOGUS_PROTOCOL = re.escape('Invalid value "bogus" for configuration property "security.protocol"')
# keys the drain's correctness rests on, with values that would break it
HARMFUL = {
    "group.id": "shared-group",
    "enable.auto.commit": True,
    "enable.auto.offset.store": True,
    "enable.partition.eof": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_uncommitted",
    "allow.auto.create.topics": True,
}


def test_the_connections_whole_client_config_reaches_the_consumer_and_the_admin_client():
    consumer = consumer_config(CLUSTER)
    assert {key: consumer[key] for key in CLUSTER} == CLUSTER
    assert admin_config(CLUSTER) == {**CLUSTER, "logger": LIBRDKAFKA_LOG}
    # fetch tuning is a default the config may change
    assert consumer_config({**CLUSTER, "fetch.max.bytes": 1_048_576})["fetch.max.bytes"] == 1_048_576
    assert consumer["fetch.max.bytes"] == 16_777_216


def test_bootstrap_servers_alone_still_configure_both_clients():
    assert consumer_config("kafka:19092")["bootstrap.servers"] == "kafka:19092"
    assert admin_config("kafka:19092") == {"bootstrap.servers": "kafka:19092", "logger": LIBRDKAFKA_LOG}
    assert overridden_keys("kafka:19092") == [] and secret_values("kafka:19092") == []


def test_the_keys_the_drain_owns_are_overridden_whatever_the_connection_says():
    given = {**CLUSTER, **HARMFUL}
    consumer = consumer_config(given)
    assert {key: consumer[key] for key in HARMFUL if key != "group.id"} == {
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "isolation.level": "read_committed",
        "allow.auto.create.topics": False,
    }
    # a throwaway group id of its own, new for every consumer
    assert consumer["group.id"].startswith("pinterest-drain-")
    assert consumer_config(given)["group.id"] != consumer["group.id"]
    assert consumer["logger"] is LIBRDKAFKA_LOG
    # the admin client is given none of them (it would only warn that it ignores consumer properties)
    assert admin_config(given) == {**CLUSTER, "logger": LIBRDKAFKA_LOG}
    assert overridden_keys(given) == sorted(HARMFUL)
    assert overridden_keys(CLUSTER) == []


@pytest.mark.parametrize(
    "given",
    [{}, {"bootstrap.servers": ""}, {"security.protocol": "SSL", "sasl.password": "pw-Unit-8hJq2"}, ""],
)
def test_a_config_without_bootstrap_servers_is_refused_by_name(given):
    with pytest.raises(KafkaConfigError, match=r"^the Kafka client config has no 'bootstrap.servers'$"):
        client_config(given)
    for make in (make_consumer, make_admin):
        with pytest.raises(KafkaConfigError, match=r"has no 'bootstrap\.servers'"):
            make(given)


def test_bootstrap_servers_that_are_no_string_are_refused():
    with pytest.raises(KafkaConfigError, match=r"'bootstrap\.servers' must be a string, not a list"):
        client_config({"bootstrap.servers": ["a:9092", "b:9092"]})


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("sasl.password", True),
        ("ssl.key.password", True),
        ("ssl.keystore.password", True),
        ("SASL.PASSWORD", True),
        ("sasl.oauthbearer.client.secret", True),
        ("ssl.key.pem", True),
        ("sasl.oauthbearer.config", True),
        ("sasl.oauthbearer.assertion.private.key.passphrase", True),
        ("sasl.username", False),
        ("security.protocol", False),
        ("ssl.ca.location", False),
        ("ssl.certificate.pem", False),
        ("bootstrap.servers", False),
        ("client.id", False),
    ],
)
def test_secret_keys_are_told_by_their_names(key, secret):
    assert is_secret_key(key) is secret


def test_secret_values_are_collected_and_redacted():
    given = {**CLUSTER, "ssl.key.password": "key-Unit-3vW", "ssl.key.pem": "", "sasl.oauthbearer.config": None}
    assert sorted(secret_values(given)) == ["key-Unit-3vW", "pw-Unit-8hJq2"]
    said = "login drain-user/pw-Unit-8hJq2 with key key-Unit-3vW refused"
    assert redact(said, given) == "login drain-user/*** with key *** refused"


def test_a_config_the_library_refuses_is_named_without_its_secrets(caplog):
    # a callback cannot come from a connection's JSON: confluent-kafka wants a callable
    with pytest.raises(KafkaConfigError, match="expected error_cb property as a callable function") as refused:
        make_consumer({**CLUSTER, "error_cb": "my_pkg.callbacks.on_error"})
    assert refused.value.__cause__ is None and refused.value.__suppress_context__  # the library's own error hidden
    with pytest.raises(KafkaConfigError, match=BOGUS_PROTOCOL):
        make_admin({**CLUSTER, "security.protocol": "bogus"})
    # the library quotes a value it refuses: a secret one is not repeated
    mechanism = {"bootstrap.servers": "127.0.0.1:1", "security.protocol": "SASL_PLAINTEXT"}
    with pytest.raises(KafkaConfigError, match=r"Unsupported SASL mechanism: \*\*\*$") as refused:
        make_consumer({**mechanism, "sasl.mechanisms": "pw-Unit-8hJq2", "sasl.password": "pw-Unit-8hJq2"})
    assert "pw-Unit-8hJq2" not in str(refused.value)
    assert "pw-Unit-8hJq2" not in caplog.text


def test_the_drain_says_which_owned_keys_it_overrides_without_any_value(caplog):
    caplog.set_level(logging.WARNING, logger=reader.__name__)
    make_consumer({**HARMFUL, "bootstrap.servers": "127.0.0.1:1", "sasl.password": "pw-Unit-8hJq2"}).close()
    [warning] = [r.getMessage() for r in caplog.records if r.name == reader.__name__]
    assert warning == (
        f"the drain sets {', '.join(sorted(HARMFUL))} itself: the Kafka client config's values are not used"
    )
    assert "pw-Unit-8hJq2" not in caplog.text


# --- against the local stack -------------------------------------------------------------------------------------


@pytest.fixture
def bootstrap(stack_env: dict[str, str]) -> str:
    return stack_env["KAFKA_BOOTSTRAP_SERVERS"]


def test_a_security_protocol_the_library_refuses_fails_the_drain_at_once_instead_of_connecting_in_plaintext(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    values = pins(3)
    produce(bootstrap, f"{kafka_topics}.pin", [(0, START_MS + i, *next(values)) for i in range(3)])
    started = time.monotonic()
    with pytest.raises(KafkaConfigError, match=BOGUS_PROTOCOL):
        drain(s3, {"bootstrap.servers": bootstrap, "security.protocol": "bogus"}, request(kafka_topics, scratch_bucket))
    assert time.monotonic() - started < 10  # no Kafka time-outs waited out
    assert not exists(s3, scratch_bucket, lake.partition_prefix("raw", "pin", DAY))  # nothing drained, lease released


def test_the_drain_talks_sasl_when_the_connection_says_so(
    s3, scratch_bucket, kafka_topics, bootstrap, caplog, monkeypatch
):
    # The local broker listens in PLAINTEXT. Given bootstrap servers only, a drain of this day succeeds; given the
    # connection's SASL settings, both of the drain's clients open a SASL handshake, which the broker refuses
    # (that its answer is a SASL one shows the handshake reached it), and the drain fails instead of connecting in
    # PLAINTEXT. The client.id in the log lines shows whose clients they are.
    monkeypatch.setattr(reader, "TIMEOUT_S", 3.0)  # two look-ups time out, each after TIMEOUT_S
    caplog.set_level(logging.DEBUG)
    values = pins(3)
    produce(bootstrap, f"{kafka_topics}.pin", [(0, START_MS + i, *next(values)) for i in range(3)])
    client_id = f"drain-sasl-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    sasl = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "drain-user",
        "sasl.password": password,
        "client.id": client_id,
    }
    with pytest.raises(DrainError) as failed:
        drain(s3, sasl, request(kafka_topics, scratch_bucket))

    refusals = [r.getMessage() for r in caplog.records if "SASL PLAIN mechanism handshake failed" in r.getMessage()]
    assert any(f"[{client_id}#consumer-" in line for line in refusals), refusals  # the consumer
    assert any(f"[{client_id}#producer-" in line for line in refusals), refusals  # the admin client
    assert all("Request not valid in current SASL state" in line for line in refusals), refusals  # the broker's
    assert not exists(s3, scratch_bucket, lake.partition_prefix("raw", "pin", DAY))
    assert password not in str(failed.value) and password not in caplog.text
    # the same day drains with the address alone: it was the SASL settings that failed it
    assert drain(s3, bootstrap, request(kafka_topics, scratch_bucket)).record_count == 3


def aborted_transaction(bootstrap: str, topic: str, timestamps: list[int]) -> None:
    """Write records of ``topic``'s partition 0 in a transaction, then abort it."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"test-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for timestamp, (key, value) in zip(timestamps, pins(len(timestamps), seed=77), strict=True):
        producer.produce(topic, value=value, key=key, partition=0, timestamp=timestamp)
    assert producer.flush(30) == 0  # in the log before the abort (an abort purges what is still queued)
    producer.abort_transaction(30)


def committed_offsets(bootstrap: str, group: str) -> list[int]:
    """The offsets the consumer group ``group`` has committed (none when the group has never committed)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [future] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
    try:
        return [tp.offset for tp in future.result(30).topic_partitions if tp.offset >= 0]
    except KafkaException as exc:  # a group Kafka does not know
        assert "GROUP_ID_NOT_FOUND" in str(exc) or "not found" in str(exc).lower(), exc
        return []


def test_owned_keys_given_by_the_connection_change_nothing_the_drain_reads_or_commits(
    s3, scratch_bucket, kafka_topics, bootstrap, caplog
):
    topic = f"{kafka_topics}.pin"
    values = pins(6)
    kept = produce(bootstrap, topic, [(0, START_MS + i, *next(values)) for i in range(3)])
    aborted_transaction(bootstrap, topic, [START_MS + 10, START_MS + 11])
    kept += produce(bootstrap, topic, [(p, START_MS + 20 + p, *next(values)) for p in range(3)])
    assert kept[3][:2] == (0, kept[2][1] + 1 + 2 + 1)  # between them on partition 0: two aborted records, a marker
    group = f"shared-{uuid.uuid4().hex[:10]}"
    connection = {**HARMFUL, "bootstrap.servers": bootstrap, "group.id": group}

    result = drain(s3, connection, request(kafka_topics, scratch_bucket))

    # read_committed whatever the connection says: the aborted records are not in the day
    assert result.record_count == len(kept) == 6
    assert sorted(drained_records(s3, scratch_bucket, load_manifest(s3, scratch_bucket))) == as_rows(kept)
    # and no offsets were committed for the connection's group
    assert committed_offsets(bootstrap, group) == []
    assert f"the drain sets {', '.join(sorted(HARMFUL))} itself" in caplog.text
