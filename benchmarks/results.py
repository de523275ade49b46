"""One measured figure of a benchmark, as every bench module reports it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Result:
    """A figure: ``bench`` groups rows, ``name`` says what was measured, ``note`` compares."""

    bench: str
    name: str
    value: float
    unit: str
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
