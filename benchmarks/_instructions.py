"""Instruction counts (``valgrind --tool=callgrind``) of the reporter's cost: noise-free.

Timing on a shared 2-core machine wobbles by more than the difference being measured; the
number of instructions a process executes does not. For each checkout given (default: this
one), ``python -c "import six"`` and ``python -c "import pandas"`` run in the benchmark's
venv (``_env.py``) under callgrind, once with no reporter and once with the ``.pth`` line
of ``popularity-contest install site`` importing that checkout (first on ``PYTHONPATH``,
byte-compiled beforehand; the baseline gets the same ``PYTHONPATH``). ``PYTHONHASHSEED=0``
and one BLAS/OpenMP thread make runs repeatable. Prints the ratio of instructions,
candidate / baseline.

    .venv/bin/python benchmarks/_instructions.py [--workload six] [CHECKOUT ...]
"""

from __future__ import annotations

import argparse
import compileall
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _env

COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(argv: list[str], env: dict[str, str]) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind not found (Debian package 'valgrind')")
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{argv}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="*", type=Path, default=[_env.REPO])
    parser.add_argument("--workload", action="append", default=None)
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="a variable for the reporter's runs (e.g. PYTHON_POPCONTEST_COUNT_DIRECT=0)",
    )  # fmt: skip
    args = parser.parse_args()
    workloads = args.workload or ["six", "pandas"]
    env = _env.build(reinstall=False)
    pth_text = (
        "import os, sys; exec('try:\\n import popularity_contest.reporter\\n"
        "except Exception:\\n pass\\n')\n"
    )
    with tempfile.TemporaryDirectory() as work:
        pth = env.site_packages / "zz_popularity_contest_instructions.pth"
        for checkout in args.checkouts:
            compileall.compile_dir(str(checkout / "popularity_contest"), quiet=1)
            # One BLAS/OpenMP thread: worker threads that spin make `import pandas` vary by
            # ±1 % from run to run under valgrind; pinned, the counts repeat exactly.
            base = env.environ(
                PYTHONPATH=str(checkout), PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1",
                OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                PYTHON_POPCONTEST_STATSD_HOST="127.0.0.1", PYTHON_POPCONTEST_STATSD_PORT="9",
            )  # fmt: skip
            base.pop("PYTHONDONTWRITEBYTECODE", None)
            base.update(item.partition("=")[::2] for item in args.env)
            for workload in workloads:
                argv = [str(env.python), "-c", f"import {workload}"]
                baseline = instructions(argv, base)
                pth.write_text(pth_text)
                try:
                    candidate = instructions(argv, base)
                finally:
                    pth.unlink()
                print(
                    f"{checkout.name:24} import {workload:8} baseline {baseline:>13,} "
                    f".pth {candidate:>13,}  ratio {candidate / baseline:.4f}",
                    flush=True,
                )
        del work
    return 0


if __name__ == "__main__":
    sys.exit(main())
