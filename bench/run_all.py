"""Run every benchmark, one after the other, on one server.

    python -m bench                                   # all, moderate sizes, one embedded PostgreSQL
    python -m bench --dsn postgresql:///postgres      # all, on an existing server
    python -m bench --quick                           # all, small sizes (a few minutes)
    python -m bench --only peers,bloat                # a subset
    python -m bench.run_all ...                       # the same

Each benchmark runs as ``python -m bench.<name> --dsn <server> <sizes>``
(the command is printed before it runs) and prints its own results; every
one creates its databases and drops them. Without ``--dsn`` one embedded
PostgreSQL is started here and shared by all of them. The sizes below are
smaller than the scripts' defaults, which are what bench/README.md reports;
a failing benchmark is reported and the others still run (exit status 1).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench._server import server

ROOT = Path(__file__).resolve().parent.parent

# name -> (moderate arguments, --quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "engine": (
        ["--calls", "50", "--single", "1000", "--rounds", "3", "--drain-events", "200000", "--drain-rounds", "2"],
        ["--calls", "20", "--single", "300", "--rounds", "2", "--drain-events", "50000", "--drain-rounds", "1"],
    ),
    "publish": (["--events", "5000", "--rounds", "3"], ["--events", "2000", "--rounds", "2"]),
    "consumer": (
        ["--events", "20000", "--rounds", "2", "--seconds", "5"],
        ["--events", "5000", "--rounds", "1", "--seconds", "3"],
    ),
    "coop_scaling": (
        ["--events", "4000", "--ticks", "80"],
        ["--events", "1000", "--ticks", "20", "--members", "1,2,4"],
    ),
    "peers": (
        ["--events", "50000", "--consume-limit", "45"],
        ["--events", "5000", "--consume-limit", "15"],
    ),
    "bloat": (["--duration", "60", "--before", "15"], ["--quick", "--after-read", "12"]),
    "batch_cost": ([], ["--quick"]),
    "held_bookkeeping": (["--cycles", "5000"], ["--cycles", "2000"]),
    "scaling": ([], ["--quick"]),
}


def git_state() -> str:
    """The commit measured, and the files of the work tree that differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit (not a git checkout)"
    files = [line[3:] for line in changed if line.strip()]
    return f"commit {commit}" + (f" with uncommitted changes to {', '.join(files)}" if files else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server for every benchmark (default: one embedded PostgreSQL)")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", help="comma-separated subset of: " + ",".join(BENCHMARKS))
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    args = parser.parse_args(argv)
    names = [n for n in (args.only.split(",") if args.only else BENCHMARKS) if n and n not in args.skip.split(",")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmarks: {unknown}")
    names = [n for n in names if (ROOT / "bench" / f"{n}.py").exists()]

    server_dsn = server(args.dsn)
    print(f"##### sa_pgque at {git_state()}; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    failed = []
    started = time.monotonic()
    for name in names:
        moderate, quick = BENCHMARKS[name]
        command = [sys.executable, "-m", f"bench.{name}", "--dsn", server_dsn, *(quick if args.quick else moderate)]
        print(f"\n##### {name}: {shlex.join(['python', *command[1:]])}", flush=True)
        t0 = time.monotonic()
        code = subprocess.call(command, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        print(f"##### {name}: exit {code} after {time.monotonic() - t0:.0f} s", flush=True)
        if code:
            failed.append(name)
    print(f"\n##### all done in {time.monotonic() - started:.0f} s; failed: {', '.join(failed) or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
