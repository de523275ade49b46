"""A Spark application for the stack test: print the addresses its driver JVM listens on, as JSON.

Run by ``spark-submit`` (whose JVM starts this Python driver, so the JVM is the parent process), with the UI on.
"""

import json
import os
from pathlib import Path

from pyspark.sql import SparkSession

LISTEN = "0A"


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening(inodes: set[str]) -> list[str]:
    """``address:port`` (kernel hex) of each listening TCP socket among ``inodes``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                found.append(fields[1])
    return found


spark = SparkSession.builder.appName("listening-sockets").config("spark.ui.enabled", "true").getOrCreate()
spark.range(10).count()  # the block manager and the UI are up once a job ran
print(json.dumps({"ui": spark.sparkContext.uiWebUrl, "listening": listening(socket_inodes(os.getppid()))}))
spark.stop()
