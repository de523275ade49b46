"""Deterministic generation of pin/geo/user triples that look like the real data, messy values included.

Rates follow the real sample of the original data set: follower counts ``"<n>k"`` 76 %, plain
digits 15 %, ``"<n>M"`` 7.5 %, ``"User Info Error"`` 1.5 %; placeholder descriptions
8.5 %, no-tags 3 %, ``"Image src error."`` 2 %, placeholder titles 1.5 % (``"No Title Data
Available"`` 1 %, ``"Untitled"`` 0.5 %); images 90 %, story videos 6.5 %, videos 3.5 %;
``downloaded`` 1 in 98 %. Other forms the records take (DESIGN.md §3, §5): no ``poster_name``
(old clients) 2 %; an empty ``title``, ``description``, ``tag_list`` or ``poster_name`` 1 % each;
the geo ``timestamp`` and the user's ``date_joined`` each in ISO-8601 33 % (a third of those
``T``-separated, a third with ``+00:00``, a third with ``.000Z``; the same UTC moment as the plain
form). A share of the output repeats an earlier triple exactly, as the original emulator re-posted rows.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from include.records import Entity, GeoRecord, PinRecord, Record, UserRecord

T = TypeVar("T")

CATEGORY_WEIGHTS: dict[str, int] = {
    "art": 24, "diy-and-crafts": 20, "quotes": 20, "travel": 19, "christmas": 19, "beauty": 18, "education": 14,
    "finance": 13, "tattoos": 13, "home-decor": 12, "mens-fashion": 11, "vehicles": 9, "event-planning": 8,
}  # fmt: skip
NO_TITLES = ("No Title Data Available", "Untitled")
NO_DESCRIPTIONS = ("No description available Story format", "No description available")
NO_TAGS = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
NO_IMAGE = "Image src error."
NO_FOLLOWERS = "User Info Error"
MEDIA_WEIGHTS = {"image": 90.0, "multi-video(story page format)": 6.5, "video": 3.5}
EMPTY_PERCENT = 1.0
"""How often each free-text field the cleaning nulls when empty (title, description, tag list, poster) is ``""``."""
# The rare values of a field with their percent; the rest of the draws get the field's usual value.
TITLE_MIX: tuple[tuple[str, float], ...] = ((NO_TITLES[0], 1.0), (NO_TITLES[1], 0.5), ("", EMPTY_PERCENT))
DESCRIPTION_MIX: tuple[tuple[str, float], ...] = (
    (NO_DESCRIPTIONS[0], 6.8),
    (NO_DESCRIPTIONS[1], 1.7),
    ("", EMPTY_PERCENT),
)
TAGS_MIX: tuple[tuple[str, float], ...] = ((NO_TAGS, 3.0), ("", EMPTY_PERCENT))
POSTER_MIX: tuple[tuple[str | None, float], ...] = ((None, 2.0), ("", EMPTY_PERCENT))
PLAIN_FORMAT = "%Y-%m-%d %H:%M:%S"
ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S+00:00", "%Y-%m-%dT%H:%M:%S.000Z")
"""ISO-8601 forms of a UTC moment that the records' model and the Spark cleaning both read as that moment."""
ISO_PERCENT = 33.0

_WORDS = (
    "easy", "ideas", "simple", "best", "diy", "beautiful", "home", "winter", "summer", "vintage", "modern", "gift",
    "quick", "budget", "tips", "guide", "colorful", "minimal", "cozy", "classic", "creative", "holiday", "small",
    "weekend", "travel", "money", "quote", "tattoo", "design", "style", "kids", "party", "wall", "art", "car",
)  # fmt: skip
_FIRST_NAMES = (
    "Alexandra", "Ben", "Chloe", "Daniel", "Emma", "Farid", "Grace", "Hiro", "Isla", "Jamal", "Kate", "Liam", "Maya",
    "Noah", "Olivia", "Priya", "Quentin", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Yusuf", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Anderson", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones", "Khan", "Lopez",
    "Martin", "Nguyen", "Okafor", "Patel", "Rossi", "Smith", "Taylor", "Usman", "Walker", "Young", "Zhang",
)  # fmt: skip
_POSTERS = (
    "Of Life and Lisa", "Ruth Ann's Crafts", "Budget Bytes", "The Travel Tips", "Tattoo Ideas Daily", "Home Decor Hub",
    "Quote Corner", "Christmas Joy", "Beauty Notes", "Finance Friday", "Classic Car Club", "Party Planner Pro",
    "Learn With Me", "Dapper Gents", "Art Room Studio",
)  # fmt: skip
_COUNTRIES = (
    "United States", "United Kingdom", "India", "Brazil", "Germany", "France", "Canada", "Australia", "Japan",
    "Mexico", "Nigeria", "Italy", "Spain", "Netherlands", "Indonesia", "Turkey", "Egypt", "Argentina", "Poland",
    "South Africa", "Antarctica (the territory South of 60 deg S)",
)  # fmt: skip
_EVENTS_FROM = datetime(2015, 1, 1)
_EVENTS_SPAN_S = int((datetime(2022, 12, 31) - _EVENTS_FROM).total_seconds())
_JOINED_FROM = datetime(2015, 1, 1)
_JOINED_SPAN_S = int((datetime(2017, 12, 31) - _JOINED_FROM).total_seconds())
IND_STRIDE = 1_000_000_000
"""New triples of seed ``s`` get ``ind`` values from ``s * IND_STRIDE`` on: seeds overlap only past this many."""
MAX_SEED = (2**63 - 1) // IND_STRIDE - 1
"""The largest seed whose whole ``ind`` range fits a record id (a Spark LongType, at most 2**63 - 1)."""


@dataclass(frozen=True, slots=True)
class Triple:
    """A pin with its geo and user records, all sharing ``ind``."""

    pin: PinRecord
    geo: GeoRecord
    user: UserRecord

    def record(self, entity: Entity) -> Record:
        """The triple's record of one entity."""
        return {"pin": self.pin, "geo": self.geo, "user": self.user}[entity]


def _chance(rng: random.Random, percent: float) -> bool:
    return rng.random() * 100 < percent


def follower_count(rng: random.Random) -> str:
    """A follower count as the site shows it: ``"124k"``, ``"437"``, ``"1M"`` or ``"User Info Error"``."""
    draw = rng.random() * 100
    if draw < 76:
        return f"{rng.randint(1, 999)}k"
    if draw < 91:
        return str(rng.choice((0, rng.randint(1, 999))))
    if draw < 98.5:
        return f"{rng.randint(1, 9)}M"
    return NO_FOLLOWERS


def rare_or(rng: random.Random, rare: Sequence[tuple[T, float]], usual: Callable[[], T]) -> T:
    """One of the ``rare`` values at its percent, else ``usual()`` (one draw decides)."""
    draw = rng.random() * 100
    for value, percent in rare:
        if draw < percent:
            return value
        draw -= percent
    return usual()


def _phrase(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize()


def timestamp_text(rng: random.Random, moment: datetime) -> str:
    """The UTC ``moment`` as ``YYYY-MM-DD HH:MM:SS``, or in ISO_PERCENT of the draws in one of ISO_FORMATS."""
    return moment.strftime(rng.choice(ISO_FORMATS) if _chance(rng, ISO_PERCENT) else PLAIN_FORMAT)


def _timestamp(rng: random.Random, start: datetime, span_s: int) -> str:
    return timestamp_text(rng, start + timedelta(seconds=rng.randrange(span_s)))


def make_triple(rng: random.Random, ind: int) -> Triple:
    """One new pin/geo/user triple with the given ``ind``, drawn from ``rng``."""
    category = rng.choices(tuple(CATEGORY_WEIGHTS), weights=tuple(CATEGORY_WEIGHTS.values()))[0]
    media = rng.choices(tuple(MEDIA_WEIGHTS), weights=tuple(MEDIA_WEIGHTS.values()))[0]
    image_hash = f"{rng.getrandbits(128):032x}"
    folder = "videos" if media != "image" else "originals"
    pin = PinRecord(
        index=ind,
        unique_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        title=rare_or(rng, TITLE_MIX, lambda: _phrase(rng, rng.randint(3, 9))),
        description=rare_or(rng, DESCRIPTION_MIX, lambda: _phrase(rng, rng.randint(6, 18)) + "…"),
        poster_name=rare_or(rng, POSTER_MIX, lambda: rng.choice(_POSTERS)),
        follower_count=follower_count(rng),
        tag_list=rare_or(rng, TAGS_MIX, lambda: ",".join(_phrase(rng, 2) for _ in range(rng.randint(3, 9)))),
        is_image_or_video=media,
        image_src=NO_IMAGE
        if _chance(rng, 2)
        else f"https://i.pinimg.com/{folder}/{image_hash[:2]}/{image_hash[2:4]}/{image_hash[4:6]}/{image_hash}.jpg",
        downloaded=1 if _chance(rng, 98) else 0,
        save_location=f"Local save in /data/{category}",
        category=category,
    )
    geo = GeoRecord(
        ind=ind,
        timestamp=_timestamp(rng, _EVENTS_FROM, _EVENTS_SPAN_S),
        latitude=round(rng.uniform(-90, 90), 6),
        longitude=round(rng.uniform(-180, 180), 6),
        country=rng.choice(_COUNTRIES),
    )
    user = UserRecord(
        ind=ind,
        first_name=rng.choice(_FIRST_NAMES),
        last_name=rng.choice(_LAST_NAMES),
        age=rng.randint(13, 17) if _chance(rng, 5) else min(int(rng.gammavariate(3.0, 9.0)) + 18, 99),
        date_joined=_timestamp(rng, _JOINED_FROM, _JOINED_SPAN_S),
    )
    return Triple(pin=pin, geo=geo, user=user)


def generate_triples(
    seed: int, count: int | None = None, repeat_percent: float = 3.0, first_ind: int | None = None
) -> Iterator[Triple]:
    """Yield ``count`` triples (endlessly when None), the same ones for the same arguments.

    New triples get ``ind`` values ``first_ind``, ``first_ind + 1``, ... (by default
    ``seed * IND_STRIDE``, so different seeds do not collide); about
    ``repeat_percent`` of the output repeats one of the last 10,000 triples exactly
    (same ``ind`` and ``unique_id``), so memory stays bounded.
    """
    rng = random.Random(seed)
    recent: deque[Triple] = deque(maxlen=10_000)
    next_ind = seed * IND_STRIDE if first_ind is None else first_ind
    produced = 0
    while count is None or produced < count:
        if recent and _chance(rng, repeat_percent):
            yield rng.choice(recent)
        else:
            triple = make_triple(rng, next_ind)
            next_ind += 1
            recent.append(triple)
            yield triple
        produced += 1
