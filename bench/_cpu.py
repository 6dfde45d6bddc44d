"""CPU time of server backends, read from ``/proc`` when the server runs on this machine.

On a busy machine, CPU seconds spent by the backend are steadier than wall
time. Every reader returns ``None`` when the server is elsewhere (or the
process is not readable), and the benchmarks then report wall time only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg


def _schedstat(pid: int) -> float | None:
    """CPU seconds of PostgreSQL process ``pid``; None when it is not one of this machine's."""
    proc = Path(f"/proc/{pid}")
    try:
        if not (proc / "cmdline").read_bytes().startswith(b"postgres"):
            return None
        return int((proc / "schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def backend_cpu(conn: psycopg.Connection[Any]) -> Callable[[], float | None]:
    """A reader of the CPU seconds used so far by ``conn``'s backend."""
    pid = conn.info.backend_pid
    return lambda: _schedstat(pid)


class BackendCpu:
    """CPU seconds used by the backends whose ``application_name`` is ``app``.

    Each read lists the matching backends in ``pg_stat_activity`` and adds up
    their CPU time; a backend seen once is remembered, so one that exits
    keeps its last reading.
    """

    def __init__(self, app: str) -> None:
        self.app = app
        self.last: dict[int, float] = {}

    def read(self, conn: psycopg.Connection[Any]) -> float | None:
        rows = conn.execute("select pid from pg_stat_activity where application_name = %s", (self.app,)).fetchall()
        for pid in {int(pid) for (pid,) in rows} | set(self.last):
            seconds = _schedstat(pid)
            if seconds is not None:
                self.last[pid] = seconds
        if rows and not self.last:
            return None
        return sum(self.last.values())
