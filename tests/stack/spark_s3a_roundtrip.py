"""A minimal Spark application for the stack test: read JSON lines from s3a, write Parquet to s3a."""

import sys

from pyspark.sql import SparkSession

source, target = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("s3a-roundtrip").getOrCreate()
df = spark.read.json(source)
df.groupBy("k").sum("v").write.mode("overwrite").parquet(target)
spark.stop()
