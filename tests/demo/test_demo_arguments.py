"""The demo's command line, refused before anything runs."""

from __future__ import annotations

import pytest

from demo.__main__ import demo_seed
from demo.__main__ import main as demo_main
from include.emulator.__main__ import seed_number
from include.emulator.generate import MAX_SEED


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
