"""The posting emulator: generates consistent pin/geo/user triples and posts them to the API or seeds Kafka."""

from include.emulator.generate import Triple, generate_triples
from include.emulator.post import PostSummary, post_triples
from include.emulator.seed import SeedReport, seed_kafka

__all__ = ["PostSummary", "SeedReport", "Triple", "generate_triples", "post_triples", "seed_kafka"]
