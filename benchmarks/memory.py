"""Peak memory of a process, in MiB (2**20 bytes), as the benchmarks report it."""

from __future__ import annotations

from pathlib import Path


def vm_hwm_mib(pid: int | str = "self") -> float:
    """``VmHWM`` of ``pid``: the peak RSS of its current image (an exec starts a new one); NaN once it has exited.

    Unlike ``ru_maxrss`` it counts neither the peak of the image before an exec nor that of reaped children.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # a zombie has no memory left to report
