"""The ending the documentation checkers share (check_*.py in this folder)."""
import sys


def verdict(problems, passed, failed=None):
    """Prints each problem and `failed` (if any) on stderr and returns 1, or
    prints `passed` and returns 0: the checker's exit status."""
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        if failed:
            print(failed, file=sys.stderr)
        return 1
    print(passed)
    return 0
