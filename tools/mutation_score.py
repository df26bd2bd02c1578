"""The score of the last ``mutmut run`` (``make mutate``): mutants, killed, survived, score,
and every mutant not killed, by name (``mutmut show NAME`` prints its diff).

Reads mutmut's result files (``mutants/**/*.py.meta``). A mutant counts as killed when a test
failed on it, it timed out, or it crashed the test process; one no test reaches
(``no tests``) counts as surviving: no test would catch that bug either. Exit status 1 when
the score is below ``--fail-under`` (percent), 2 when there are no results.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

# mutmut 3's exit codes (mutmut.stats.status_by_exit_code), grouped for the score.
KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout"}
KILLED |= {255: "timeout", -11: "crashed", -9: "crashed", 37: "type check"}
NOT_KILLED = {0: "survived", 5: "no tests", 33: "no tests", 35: "suspicious"}
NOT_RUN = {None: "not checked", 34: "skipped", 2: "interrupted"}


def status(code: int | None) -> str:
    if code is None:
        return "not checked"
    return KILLED.get(code) or NOT_KILLED.get(code) or NOT_RUN.get(code) or "suspicious"


def results(root: Path) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for meta in sorted(root.glob("**/*.py.meta")):
        found.update(json.loads(meta.read_text())["exit_code_by_key"])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--fail-under", type=float, default=0.0, metavar="PERCENT")
    args = parser.parse_args(argv)
    found = results(args.mutants)
    counted = {name: code for name, code in found.items() if code not in NOT_RUN}
    if not counted:
        print(f"no mutation results under {args.mutants}/: run `make mutate` first")
        return 2
    statuses = Counter(status(code) for code in counted.values())
    killed = sum(1 for code in counted.values() if code in KILLED)
    left = sorted(name for name, code in counted.items() if code not in KILLED)
    score = 100.0 * killed / len(counted)
    print("\nNot killed (`.venv/bin/mutmut show NAME` prints the change):")
    for name in left:
        print(f"  {name}: {status(counted[name])}")
    not_run = len(found) - len(counted)
    print(
        f"\nMutants: {len(counted)} ({not_run} not run)  killed: {killed}  "
        f"not killed: {len(left)}  ({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))})"
    )
    print(f"Mutation score: {score:.1f}% of mutants killed")
    return 1 if score < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
