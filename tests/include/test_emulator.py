"""The emulator's generator: deterministic, consistent triples, messy values at about the real rates."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from pydantic import TypeAdapter

from include.days import days_between
from include.emulator.generate import (
    CATEGORY_WEIGHTS,
    ISO_FORMATS,
    NO_DESCRIPTIONS,
    NO_FOLLOWERS,
    NO_TAGS,
    PLAIN_FORMAT,
    Triple,
    generate_triples,
    timestamp_text,
)
from include.emulator.seed import day_timestamps_ms, retention_refusal, seed_kafka
from include.record_structs import fields_set_counter
from include.records import ENTITIES, MODELS, GeoRecord, UserRecord, kafka_value


def test_same_seed_same_records_and_other_seed_other_records() -> None:
    def dump(seed: int) -> list[str]:
        return [t.pin.model_dump_json() + t.geo.model_dump_json() for t in generate_triples(seed, 50)]

    assert dump(5) == dump(5)
    assert dump(5) != dump(6)


def test_triples_share_ind_and_are_valid_records() -> None:
    triples = list(generate_triples(1, 300))
    assert len(triples) == 300
    for triple in triples:
        assert triple.pin.index == triple.geo.ind == triple.user.ind
        for entity, model in MODELS.items():
            record = triple.record(entity)
            assert model.model_validate_json(record.model_dump_json()) == record


def test_repeats_are_exact_copies_of_earlier_triples() -> None:
    triples = list(generate_triples(2, 2000, repeat_percent=5))
    by_id = Counter(t.pin.unique_id for t in triples)
    repeated = [uid for uid, n in by_id.items() if n > 1]
    assert 40 <= sum(by_id[uid] - 1 for uid in repeated) <= 160
    first = {}
    for triple in triples:
        assert first.setdefault(triple.pin.unique_id, triple) == triple
    assert len({t.pin.index for t in triples}) == len(by_id)


def test_value_mix_is_close_to_the_real_sample() -> None:
    pins = [t.pin for t in generate_triples(3, 10_000, repeat_percent=0)]
    followers = Counter(
        "error" if p.follower_count == NO_FOLLOWERS else p.follower_count[-1] if p.follower_count[-1] in "kM" else "n"
        for p in pins
    )
    shares = {kind: n / len(pins) for kind, n in followers.items()}
    assert shares["k"] == pytest.approx(0.76, abs=0.02)
    assert shares["n"] == pytest.approx(0.15, abs=0.02)
    assert shares["M"] == pytest.approx(0.075, abs=0.015)
    assert shares["error"] == pytest.approx(0.015, abs=0.006)
    media = Counter(p.is_image_or_video for p in pins)
    assert media["image"] / len(pins) == pytest.approx(0.90, abs=0.02)
    assert {p.category for p in pins} == set(CATEGORY_WEIGHTS)
    assert all(p.save_location == f"Local save in /data/{p.category}" for p in pins)
    assert sum(p.downloaded for p in pins) / len(pins) == pytest.approx(0.98, abs=0.01)
    assert all(json.loads(p.model_dump_json())["index"] == p.index for p in pins[:10])


@pytest.fixture(scope="module")
def many_triples() -> list[Triple]:
    return list(generate_triples(8, 20_000, repeat_percent=0))


def share(values: list[object], wanted: object) -> float:
    return sum(value == wanted for value in values) / len(values)


def timestamp_form(text: str) -> str:
    """Which form a generated timestamp text has: ``plain``, ``T``, ``+00:00`` or ``Z``."""
    if text[10] == " ":
        return "plain"
    return "Z" if text.endswith("Z") else "+00:00" if text.endswith("+00:00") else "T"


def test_placeholder_titles_absent_posters_empty_texts_and_iso_timestamps_occur_at_their_shares(
    many_triples: list[Triple],
) -> None:
    pins = [t.pin for t in many_triples]
    titles = [p.title for p in pins]
    assert share(titles, "No Title Data Available") == pytest.approx(0.01, abs=0.003)
    assert share(titles, "Untitled") == pytest.approx(0.005, abs=0.002)
    descriptions = [p.description for p in pins]
    assert share(descriptions, NO_DESCRIPTIONS[0]) + share(descriptions, NO_DESCRIPTIONS[1]) == pytest.approx(
        0.085, abs=0.008
    )
    assert share([p.tag_list for p in pins], NO_TAGS) == pytest.approx(0.03, abs=0.005)
    posters = [p.poster_name for p in pins]
    assert share(posters, None) == pytest.approx(0.02, abs=0.004)
    for texts in (titles, descriptions, [p.tag_list for p in pins], posters):
        assert share(texts, "") == pytest.approx(0.01, abs=0.003)
    for texts in ([t.geo.timestamp for t in many_triples], [t.user.date_joined for t in many_triples]):
        forms = Counter(map(timestamp_form, texts))
        assert set(forms) == {"plain", "T", "+00:00", "Z"}
        assert forms["plain"] / len(texts) == pytest.approx(0.67, abs=0.015)
        for form in ("T", "+00:00", "Z"):
            assert forms[form] / len(texts) == pytest.approx(0.11, abs=0.01)


def test_a_pin_without_poster_name_is_sent_without_the_field(many_triples: list[Triple]) -> None:
    pin = next(t.pin for t in many_triples if t.pin.poster_name is None)
    assert "poster_name" not in json.loads(kafka_value(pin))


def test_every_generated_record_is_accepted_by_its_model_and_its_msgspec_mirror(many_triples: list[Triple]) -> None:
    for entity in ENTITIES:
        values = [kafka_value(t.record(entity)) for t in many_triples]  # as the API stores them
        records = [MODELS[entity].model_validate_json(value) for value in values]
        assert records == [t.record(entity) for t in many_triples]
        # the mirror decodes each value (raising ValueError on one it refuses) and counts the same fields set
        assert fields_set_counter(entity)(values) == sum(len(r.model_fields_set) for r in records)


@pytest.mark.parametrize("form", ISO_FORMATS)
@pytest.mark.parametrize(
    "parse", [TypeAdapter(datetime).validate_python, datetime.fromisoformat], ids=["model", "python"]
)
def test_an_iso_timestamp_and_its_plain_twin_denote_the_same_moment(
    form: str, parse: Callable[[str], datetime]
) -> None:
    moment = datetime(2016, 2, 29, 23, 59, 58)
    plain, iso = moment.strftime(PLAIN_FORMAT), moment.strftime(form)
    assert iso != plain
    for text in (plain, iso):  # both accepted, and kept as sent
        assert GeoRecord(ind=0, timestamp=text, latitude=0.0, longitude=0.0, country="Chad").timestamp == text
        assert UserRecord(ind=0, first_name="A", last_name="B", age=30, date_joined=text).date_joined == text

    def utc(text: str) -> datetime:  # the lake reads a text without an offset as UTC
        parsed = parse(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    assert utc(iso) == utc(plain) == moment.replace(tzinfo=UTC)


def test_generated_timestamp_texts_are_the_drawn_moment_in_one_of_the_forms() -> None:
    rng, moment = random.Random(0), datetime(2017, 12, 31, 23, 59, 59)
    texts = {timestamp_text(rng, moment) for _ in range(200)}
    assert texts == {moment.strftime(f) for f in (PLAIN_FORMAT, *ISO_FORMATS)}


def test_days_between_includes_both_ends_and_refuses_reversed_ranges() -> None:
    assert days_between(date(2026, 11, 20), date(2026, 11, 22)) == [
        date(2026, 11, 20),
        date(2026, 11, 21),
        date(2026, 11, 22),
    ]
    with pytest.raises(ValueError, match="before the first day"):
        days_between(date(2026, 11, 22), date(2026, 11, 20))


def test_day_timestamps_stay_inside_the_utc_day_and_increase() -> None:
    stamps = day_timestamps_ms(date(2026, 11, 21), 1000, random.Random(0))
    days = {datetime.fromtimestamp(ms / 1000, UTC).date() for ms in stamps}
    assert days == {date(2026, 11, 21)}
    assert stamps == sorted(stamps)


def test_the_last_draw_of_a_day_stays_before_the_next_midnight() -> None:
    class LastDraw(random.Random):
        def random(self) -> float:
            return 1 - 2**-53  # the largest draw: (2 + it) * (DAY_MS / 3) rounds to DAY_MS itself

    stamps = day_timestamps_ms(date(2026, 11, 21), 3, LastDraw())
    next_midnight_ms = int(datetime(2026, 11, 22, tzinfo=UTC).timestamp() * 1000)
    assert stamps[-1] == next_midnight_ms - 1


def test_seeding_refuses_today_and_future_days_before_touching_kafka() -> None:
    today = datetime.now(UTC).date()
    with pytest.raises(ValueError, match="past days only"):
        seed_kafka(today, today, 10)


def test_a_day_is_refused_only_when_part_of_it_is_older_than_the_topics_time_retention() -> None:
    now_ms = int(datetime(2026, 3, 10, 15, 0, tzinfo=UTC).timestamp() * 1000)
    three_days = {"retention.ms": str(3 * 86_400_000)}
    assert retention_refusal("t", {"retention.ms": "-1"}, date(2001, 1, 1), now_ms) is None
    assert retention_refusal("t", three_days, date(2026, 3, 8), now_ms) is None  # from 03-07 15:00 on is kept
    refusal = retention_refusal("t", three_days, date(2026, 3, 7), now_ms)  # its first 15 hours would go
    assert refusal is not None
    assert "topic t keeps records for retention.ms=259200000 (3 days)" in refusal
    assert "the records of 2026-03-07" in refusal and "seed from 2026-03-08 on" in refusal
    # a retention shorter than the time since midnight leaves no past day to seed: today is not one
    half_day = {"retention.ms": str(86_400_000 // 2)}
    refusal = retention_refusal("t", half_day, date(2026, 3, 9), now_ms)
    assert refusal is not None and "no past day can be seeded: raise the topic's retention.ms" in refusal


def test_the_default_seed_is_new_each_run_and_printed_ranges_of_seeds_do_not_meet() -> None:
    from include.emulator.__main__ import parse_args
    from include.emulator.generate import MAX_SEED

    seeds = {parse_args(["post"]).seed for _ in range(5)} | {
        parse_args(["seed-kafka", "--from", "2020-01-01", "--to", "2020-01-02", "--per-day", "1"]).seed
    }
    assert len(seeds) == 6
    # two neighbouring seeds leave room for ten days at 1,000 triples per second before their ind values meet
    first_ind = [next(generate_triples(seed, 1, repeat_percent=0)).pin.index for seed in (41, 42)]
    assert first_ind[1] - first_ind[0] >= 10 * 86_400 * 1_000
    # the largest seed the CLI takes still gives valid record ids (a signed 64-bit integer) over its whole range
    assert parse_args(["post", "--seed", str(MAX_SEED)]).seed == MAX_SEED
    last_ind = next(generate_triples(MAX_SEED, 1, repeat_percent=0)).pin.index + (first_ind[1] - first_ind[0]) - 1
    assert last_ind <= 2**63 - 1
    assert all(triple.user.ind >= 0 for triple in generate_triples(MAX_SEED, 3))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["post", "--count", "0"], "--count"),
        (["post", "--duration", "-1"], "--duration"),
        (["post", "--concurrency", "0"], "--concurrency"),
        (["post", "--rate", "0"], "--rate"),
        (["post", "--rate", "-5"], "--rate"),
        (["post", "--rate", "nan"], "--rate"),
        (["post", "--repeat-percent", "101"], "--repeat-percent"),
        (["post", "--repeat-percent", "-1"], "--repeat-percent"),
        (["post", "--seed", "-1"], "--seed"),
        (["post", "--seed", str(2**63)], "--seed"),
        (["seed-kafka", "--from", "2020-01-01", "--to", "2020-01-01", "--per-day", "0"], "--per-day"),
        (["seed-kafka", "--from", "1969-12-31", "--to", "1970-01-02", "--per-day", "1"], "--from 1969-12-31"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from include.emulator.__main__ import parse_args

    with pytest.raises(SystemExit) as stopped:
        parse_args(args)
    assert stopped.value.code == 2
    assert named in capsys.readouterr().err.splitlines()[-1]


def test_help_shows_the_defaults_and_what_the_seed_does(capsys: pytest.CaptureFixture[str]) -> None:
    from include.emulator.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["post", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "parallel connections (default: 16)" in text
    assert "share of exact repeats (default: 3.0)" in text
    assert "the same seed sends the same records again" in text
    assert "(default: None)" not in text


def test_a_missed_rate_is_named_in_triples_per_second() -> None:
    from include.emulator.post import rate_shortfall

    assert rate_shortfall(200, 137.04) == "rate 200 triples/s not reached: 137.0 triples/s"
    assert rate_shortfall(200, 190) is None  # 95 % is reached
    assert rate_shortfall(None, 3) is None


def test_seeding_refuses_days_before_1970_before_touching_kafka() -> None:
    with pytest.raises(ValueError, match="before 1970-01-01"):
        seed_kafka(date(1969, 12, 30), date(1970, 1, 2), 1)
