"""Run every benchmark: each ``benchmarks/*.py`` script except this one and ``_*`` modules.

A script is a benchmark when it has an ``if __name__ == "__main__":`` block; a module
without one is a helper and is not run, whatever its name.

    .venv/bin/python benchmarks/run.py              # all of them (what `make bench` runs)
    .venv/bin/python benchmarks/run.py reporter     # only scripts whose name contains "reporter"
    .venv/bin/python benchmarks/run.py --list
    .venv/bin/python benchmarks/run.py -- --quick   # arguments after -- go to every script

A new benchmark needs no registration: add ``benchmarks/<name>.py`` that prints its figures
(with a baseline measured in the same run) and exits 0. Scripts run one after the other,
never in parallel, so they do not disturb each other's timings.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[Path]:
    return sorted(
        path
        for path in BENCH_DIR.glob("*.py")
        if path.name != Path(__file__).name
        and not path.name.startswith("_")
        and '__name__ == "__main__"' in path.read_text(errors="replace")
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    passed: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passed = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("select", nargs="*", help="run only scripts whose name contains one")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    scripts = [s for s in discover() if not args.select or any(k in s.stem for k in args.select)]
    if args.list:
        for script in scripts:
            print(script.name)
        return 0
    if not scripts:
        print("no benchmark matches", file=sys.stderr)
        return 2
    failed = []
    for script in scripts:
        print(f"==> {script.name}", flush=True)
        start = time.monotonic()
        code = subprocess.run([sys.executable, str(script), *passed], check=False).returncode
        print(f"<== {script.name}: exit {code} in {time.monotonic() - start:.0f} s\n", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
