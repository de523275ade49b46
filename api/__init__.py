"""The ingest API: a FastAPI service that validates records and produces them to Kafka."""
