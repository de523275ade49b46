"""The posting emulator: generates consistent pin/geo/user triples and posts them to the API or seeds Kafka."""

from include.emulator.generate import Triple, generate_triples
from include.emulator.post import ApiUnreachableError, PostSummary, check_api, post_triples
from include.emulator.seed import SeedError, SeedReport, check_kafka, seed_kafka

__all__ = [
    "ApiUnreachableError",
    "PostSummary",
    "SeedError",
    "SeedReport",
    "Triple",
    "check_api",
    "check_kafka",
    "generate_triples",
    "post_triples",
    "seed_kafka",
]
