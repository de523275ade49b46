"""PySpark jobs of the platform: ``clean`` (raw -> clean) and ``analytics`` (clean -> analytics).

Each job is a ``main(argv)`` that builds the SparkSession and chains pure
``DataFrame -> DataFrame`` transforms; the transforms live in their own modules
so tests run them on a local session.
"""
