"""Execute chapters in place so their stored outputs come from a real run.

Usage: python tools/run_chapter.py chapters/01_why_bnn.ipynb [...] [--timeout 3600]

The profile comes from BNNBOOK_PROFILE as usual. Stream outputs are coalesced
and carriage returns (progress bars) are collapsed to their final state, so
the stored notebook shows each bar once.
"""

import argparse
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if not path.exists():
            print(f"no such notebook: {path}", file=sys.stderr)
            return 2
        nb = nbformat.read(path, as_version=4)
        started = time.time()
        client = NotebookClient(nb, timeout=args.timeout, kernel_name=args.kernel,
                                resources={"metadata": {"path": str(path.parent)}},
                                coalesce_streams=True, record_timing=False)
        client.execute()
        for cell in nb.cells:  # keep the saved notebook free of run-specific ids
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
        print(f"executed {path} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
