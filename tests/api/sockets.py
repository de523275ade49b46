"""What the kernel holds for the TCP connections accepted on a local port (Linux ``/proc/net/tcp``).

Tests use it to see that a request reached a process they cannot look into: a hung broker's connections keep
what the API sent them unread; an API that has read a request leaves nothing unread on its connection.
"""

from __future__ import annotations

from pathlib import Path

ESTABLISHED = "01"


def unread_bytes(port: int) -> list[int]:
    """For each established connection whose local port is ``port``: the bytes received and not yet read."""
    queues = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        lines = path.read_text().splitlines()[1:] if path.exists() else []
        for line in lines:
            fields = line.split()
            local, state, queued = fields[1], fields[3], fields[4]
            if state == ESTABLISHED and int(local.rpartition(":")[2], 16) == port:
                queues.append(int(queued.partition(":")[2], 16))
    return queues
