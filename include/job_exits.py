"""Exit codes of the lake's Spark jobs that tell Airflow a retry cannot help (the ``sysexits.h`` values).

spark-submit (in client mode) exits with the driver's exit code: ``spark_jobs/failures.py`` exits with these,
and ``plugins/lake_spark.py`` fails such a task at once instead of retrying it.
"""

USAGE_EXIT_CODE = 64
DATA_EXIT_CODE = 65
PERMANENT_EXIT_CODES = {
    USAGE_EXIT_CODE: "the job's arguments are wrong",
    DATA_EXIT_CODE: "the lake holds data the job refuses (its log says which, and what to do): a retry reads the same",
}
