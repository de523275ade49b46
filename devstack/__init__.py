"""The local stack: Kafka, MinIO, Airflow, Spark and the API as plain processes under `.stack/`.

`python -m devstack install|up|down|status|start SERVICE|stop SERVICE|env|airflow ARGS...`.
"""
