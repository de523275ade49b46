"""The demo's command line, refused before anything runs."""

from __future__ import annotations

from datetime import date

import pytest

from demo.__main__ import demo_seed, size_refusal
from demo.__main__ import main as demo_main
from include.emulator.__main__ import seed_number
from include.emulator.generate import IND_STRIDE, MAX_SEED


@pytest.mark.parametrize("seed", ["-1", str(MAX_SEED), "seven"])
def test_a_seed_outside_the_range_is_refused_naming_the_option_before_anything_runs(seed, capsys):
    """-1 was a pydantic traceback from inside the seeding; MAX_SEED seeded Kafka, then the emulator's post refused
    the seed after it, naming another program and a value never typed."""
    with pytest.raises(SystemExit) as refused:
        demo_main(["--seed", seed])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    expected = f"expected a whole number from 0 to {MAX_SEED - 1}, got '{seed}'"
    assert f"python -m demo: error: argument --seed: {expected}" in err


def test_the_largest_seed_leaves_the_live_records_a_seed_of_their_own():
    assert demo_seed(str(MAX_SEED - 1)) == MAX_SEED - 1
    assert seed_number(str(MAX_SEED)) == MAX_SEED  # the live records' seed, one more
    assert demo_seed("0") == 0


TODAY = date(2026, 11, 28)
SINCE_1970 = (TODAY - date(1970, 1, 1)).days


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--live", str(IND_STRIDE + 1)], f"--live {IND_STRIDE + 1} is more than one seed's {IND_STRIDE} triples"),
        (["--history-days", "4", "--per-day", str(IND_STRIDE // 4 + 1)], "--per-day times --history-days is more"),
        (["--history-days", "2000000"], "--history-days 2000000 reaches before 1970-01-01"),
    ],
)
def test_sizes_the_emulator_would_refuse_midway_are_refused_before_anything_runs(arguments, says, capsys):
    """--live 2000000000 was refused by the emulator's post after the seeding had written to Kafka, naming an
    option of another program; --history-days 1000000 was an OverflowError traceback."""
    with pytest.raises(SystemExit) as refused:
        demo_main(arguments)
    assert refused.value.code == 2
    assert f"python -m demo: error: {says}" in capsys.readouterr().err


def test_the_largest_sizes_the_emulator_takes_are_accepted():
    assert size_refusal(SINCE_1970, IND_STRIDE // SINCE_1970, IND_STRIDE, TODAY) is None
    assert size_refusal(SINCE_1970 + 1, 1, 1, TODAY) is not None  # 1969-12-31
    assert size_refusal(1, IND_STRIDE + 1, 1, TODAY) is not None
