"""The local stack's Spark drivers listen on loopback only, as its other services do."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from devstack import paths
from devstack.environment import process_env


def kernel_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IP of a ``/proc/net/tcp{,6}`` local address (32-bit words in host order, little-endian here)."""
    words = hex_address.partition(":")[0]
    raw = b"".join(bytes.fromhex(words[i : i + 8])[::-1] for i in range(0, len(words), 8))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def test_kernel_address_reads_both_tables():
    assert str(kernel_address("0100007F:0FC8")) == "127.0.0.1"
    assert str(kernel_address("00000000:1F90")) == "0.0.0.0"
    assert str(kernel_address("0000000000000000FFFF00000100007F:0FC8")) == "127.0.0.1"
    assert str(kernel_address("00000000000000000000000001000000:0FC8")) == "::1"
    assert str(kernel_address("00000000000000000000000000000000:0FC8")) == "::"


def test_a_job_started_with_the_stacks_environment_listens_on_loopback_only():
    app = Path(__file__).with_name("spark_listening_sockets.py")
    command = [str(paths.VENV_BIN / "spark-submit"), "--master", "local[1]", str(app)]
    done = subprocess.run(command, env=process_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    addresses = {str(kernel_address(entry)) for entry in report["listening"]}
    ports = {int(entry.rpartition(":")[2], 16) for entry in report["listening"]}
    # the driver's RPC endpoint, its block manager and the UI at least
    assert len(ports) >= 3 and urlsplit(report["ui"]).port in ports, report
    assert addresses <= {"127.0.0.1", "::1"}, report
