"""librdkafka's log through RepeatFilter: one line of a kind per window, on clients that find no broker."""

from __future__ import annotations

import logging
import re
import time

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from include.drain.kafka_log import RepeatFilter, log_held_back
from include.drain.kafka_reader import make_admin, make_consumer
from tests.api_process import free_port

CONNECT_FAILED = "Connect to ipv4#127.0.0.1:{port} failed"


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("librdkafka", logging.ERROR, __file__, 1, "%s", (message,), None)


def test_a_repeat_within_the_window_is_held_and_counted_on_the_next_line_passed():
    clock = [100.0]
    repeats = RepeatFilter(window_s=30.0, clock=lambda: clock[0])
    first = _record("broker: Connect failed: Connection refused (after 0ms in state CONNECT)")
    assert repeats.filter(first)
    assert first.getMessage() == "broker: Connect failed: Connection refused (after 0ms in state CONNECT)"
    clock[0] = 110.0
    assert not repeats.filter(_record("broker: Connect failed: Connection refused (after 3ms in state CONNECT)"))
    assert not repeats.filter(
        _record(
            "broker: Connect failed: Connection refused (after 0ms in state CONNECT, 2 identical error(s) suppressed)"
        )
    )
    assert repeats.filter(_record("another broker: Connect failed"))
    clock[0] = 130.0
    later = _record("broker: Connect failed: Connection refused (after 1ms in state CONNECT)")
    assert repeats.filter(later)
    assert later.getMessage() == (
        "broker: Connect failed: Connection refused (after 1ms in state CONNECT) (2 more like it in the last 30 s)"
    )
    clock[0] = 140.0
    assert not repeats.filter(_record("broker: Connect failed: Connection refused (after 0ms in state CONNECT)"))


def test_what_is_held_when_the_clients_close_is_logged_with_its_count_and_then_passes_again(caplog):
    clock = [100.0]
    repeats = RepeatFilter(window_s=30.0, clock=lambda: clock[0])
    logger = logging.getLogger("tests.held_back")
    logger.addFilter(repeats)
    try:
        with caplog.at_level(logging.WARNING, logger=logger.name):
            for n in range(5):  # one line passes, four are held back
                logger.error("broker: Connect failed (after %dms in state CONNECT)", n)
            logger.warning("a line of its own")
            clock[0] = 110.0
            log_held_back(logger, repeats)
            log_held_back(logger, repeats)  # nothing is held any more: logs nothing
            logger.error("broker: Connect failed (after 9ms in state CONNECT)")  # within the window, yet passes
    finally:
        logger.removeFilter(repeats)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "broker: Connect failed (after 0ms in state CONNECT)"),
        (logging.WARNING, "a line of its own"),
        (logging.ERROR, "broker: Connect failed (after 4ms in state CONNECT) (the last of 4 like it held back)"),
        (logging.ERROR, "broker: Connect failed (after 9ms in state CONNECT)"),
    ]


def _consume_for(consumer: Consumer, seconds: float) -> None:
    consumer.assign([TopicPartition("nowhere.pin", 0, 0)])
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            consumer.consume(100, timeout=0.5)
    finally:
        consumer.close()


def test_librdkafka_repeats_connect_failures_many_times_a_second_on_stderr(capfd):
    """What the filter is for: a plain consumer with no broker writes a line per reconnect to stderr."""
    port = free_port()
    _consume_for(Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": "plain"}), 3.0)
    assert capfd.readouterr().err.count(CONNECT_FAILED.format(port=port)) >= 10


def test_the_drains_consumer_logs_a_connect_failure_once_and_nothing_to_stderr(caplog, capfd):
    port = free_port()
    with caplog.at_level(logging.ERROR, logger="include.drain.librdkafka"):
        _consume_for(make_consumer(f"127.0.0.1:{port}"), 3.0)
        log_held_back()  # as the drain does once its clients are closed
    failures = [r for r in caplog.records if CONNECT_FAILED.format(port=port) in r.getMessage()]
    assert len(failures) == 2  # the first, and the last held back with the count (librdkafka retries within 3 s)
    assert failures[0].name == failures[1].name == "include.drain.librdkafka"
    assert "held back" not in failures[0].getMessage()
    assert re.search(r"\(the last of [1-9]\d* like it held back\)$", failures[1].getMessage())
    assert CONNECT_FAILED.format(port=port) not in capfd.readouterr().err


def test_the_drains_admin_client_logs_through_the_filter_when_polled(caplog, capfd):
    port = free_port()
    admin = make_admin(f"127.0.0.1:{port}")
    with caplog.at_level(logging.ERROR, logger="include.drain.librdkafka"):
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=3)
        admin.poll(0)
    failures = [r for r in caplog.records if CONNECT_FAILED.format(port=port) in r.getMessage()]
    assert len(failures) == 1
    assert CONNECT_FAILED.format(port=port) not in capfd.readouterr().err
