# syntax=docker/dockerfile:1
# One image for every Python process of docker-compose.yaml: the Airflow api-server, scheduler, dag-processor and
# triggerer, the ingest API, the init jobs, and the Spark master and worker (pyspark's own Spark, so the cluster runs
# exactly the Spark version spark-submit uses). Same pins as the local stack: requirements.txt + constraints.txt.

# hadoop-aws and the AWS SDK bundle for s3a://, resolved from Maven Central with the local stack's pom.
FROM maven:3.9-eclipse-temurin-17 AS s3a-jars
# Must match the Hadoop client jars bundled with pyspark (devstack/versions.py HADOOP_VERSION).
ARG HADOOP_VERSION=3.5.0
# The plugin version devstack/install.py pins.
ARG MAVEN_DEPENDENCY_PLUGIN_VERSION=3.8.1
COPY devstack/maven/s3a/pom.xml /build/pom.xml
RUN mvn -q -B -f /build/pom.xml \
        org.apache.maven.plugins:maven-dependency-plugin:${MAVEN_DEPENDENCY_PLUGIN_VERSION}:copy-dependencies \
        -DincludeScope=runtime \
        -DoutputDirectory=/s3a-jars -Dhadoop.version=${HADOOP_VERSION}

FROM python:3.11-slim-bookworm AS platform
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Java 17 for spark-submit and the Spark master/worker.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*

# The pinned Python stack, plus the PostgreSQL drivers Airflow needs here (sync psycopg2, async asyncpg). Then the
# pinned pyspark again: pyspark-client (required by the Spark provider, older) overwrites pyspark's Python files.
# pyspark comes as a source archive only, and pip keeps no cache here (PIP_NO_CACHE_DIR): it is built into a wheel
# once, in /tmp/wheels, which both installs take (pip prefers a wheel to a source archive of the same version), and
# the folder is deleted in the same step, so the image does not keep it.
COPY requirements.txt constraints.txt docker/requirements-postgres.txt /tmp/pins/
RUN python -m venv /opt/venv \
 && pip wheel --no-deps --wheel-dir /tmp/wheels "$(grep -E '^pyspark==' /tmp/pins/requirements.txt)" \
 && pip install --find-links /tmp/wheels \
        -r /tmp/pins/requirements.txt -r /tmp/pins/requirements-postgres.txt -c /tmp/pins/constraints.txt \
 && pip install --force-reinstall --no-deps --no-index /tmp/wheels/pyspark-*.whl \
 && rm -rf /tmp/wheels

# s3a for every Spark of the image: link the jars into pyspark's jars, as devstack/install.py does.
COPY --from=s3a-jars /s3a-jars /opt/s3a-jars
RUN jars="$(python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" \
 && ln -s /opt/s3a-jars/*.jar "$jars/" \
 && ls "$jars"/hadoop-aws-*.jar > /dev/null

# A non-root user; Airflow's home and logs and Spark's work folder are its own.
RUN useradd --uid 50000 --gid 0 --create-home --home-dir /home/platform platform \
 && mkdir -p /opt/airflow/logs /opt/spark-work \
 && chown -R platform:0 /opt/airflow /opt/spark-work

# The platform code (`import include` works through PYTHONPATH).
WORKDIR /opt/platform
COPY api/ api/
COPY include/ include/
COPY dags/ dags/
COPY plugins/ plugins/
COPY spark_jobs/ spark_jobs/
COPY docker/*.py docker/
ENV PYTHONPATH=/opt/platform \
    AIRFLOW_HOME=/opt/airflow

USER platform
CMD ["python", "-m", "api"]
