"""Start-up time of `contrastkit --help`, `list` and `show` against `python -c pass` (target <= 0.5 s wall).

    .venv/bin/python bench/cli_startup.py [--repeats 10]

Each command runs in a fresh process; the median of the repeats is reported. No torch import happens on
these paths (tests/recipes/test_cli.py checks that); this script measures what the user waits for.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "contrastkit --help": [sys.executable, "-m", "contrastkit.recipes", "--help"],
    "contrastkit list": [sys.executable, "-m", "contrastkit.recipes", "list"],
    "contrastkit show text": [sys.executable, "-m", "contrastkit.recipes", "show", "text"],
    "contrastkit show image": [sys.executable, "-m", "contrastkit.recipes", "show", "image"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    script = shutil.which("contrastkit", path=os.path.dirname(sys.executable))
    if script:
        COMMANDS["contrastkit list (console script)"] = [script, "list"]
    base = None
    print(f"{'command':<36} {'median s':>9} {'vs python':>10}")
    for name, cmd in COMMANDS.items():
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        base = base or med
        verdict = "" if name.startswith("python") else ("  ok" if med <= 0.5 else "  OVER 0.5 s")
        print(f"{name:<36} {med:>9.3f} {med / base:>9.1f}x{verdict}")


if __name__ == "__main__":
    main()
