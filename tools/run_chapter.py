"""Execute chapters in place so their stored outputs come from a real run.

Usage: python tools/run_chapter.py chapters/01_why_bnn.ipynb [...] [--timeout 3600] [--time-only]

The profile comes from BNNBOOK_PROFILE as usual. Stream outputs are coalesced
and carriage returns (progress bars) are collapsed to their final state, so
the stored notebook shows each bar once. Each run's wall time is merged into
results/chapter_times.json (per chapter and profile, with the machine);
``--time-only`` runs and times the chapters without writing them back (and
sends their results/*.json to a scratch folder), e.g. to time the quick
profile without touching the stored full-profile outputs.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def gpu_name() -> str:
    """The first NVIDIA GPU's name, or "" (asks nvidia-smi, so neither JAX nor TF is loaded here)."""
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=30, check=True).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return ""
    return names[0].strip()


def cpu_name() -> str:
    """The CPU's model name (e.g. "AMD EPYC"), or "" where the platform does not say.

    Chapter wall times depend on it more than on the core count: bfloat16
    matrix products, for one, are much faster on CPUs with AMX units.
    """
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def record_time(path: pathlib.Path, profile: str, seconds: float) -> None:
    """Merge one run's wall time into results/chapter_times.json.

    The key is the profile, plus the GPU's name on a GPU machine, so CPU and GPU
    timings of the same profile are kept side by side.
    """
    times_path = ROOT / "results" / "chapter_times.json"
    record = json.loads(times_path.read_text()) if times_path.exists() else {}
    gpu = gpu_name()
    cpu = cpu_name()
    machine = (f"{platform.machine()}" + (f", {cpu}" if cpu else "") + f", {os.cpu_count()} CPU cores"
               + (f", {gpu}" if gpu else ""))
    record.setdefault(path.stem, {})[f"{profile}, {gpu}" if gpu else profile] = {
        "seconds": round(seconds, 1),
        "machine": machine,
        "date": datetime.date.today().isoformat(),
    }
    times_path.parent.mkdir(exist_ok=True)
    times_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def print_progress(path: pathlib.Path, cell, cell_index: int, num_cells: int, started: float) -> None:
    """One line per executed code cell, so a long run shows how far it got (and where the time went)."""
    if cell.cell_type == "code":
        print(f"{path.name}: cell {cell_index + 1}/{num_cells} done at {time.time() - started:.0f} s", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--time-only", action="store_true", help="run and time, do not write the notebook back")
    args = parser.parse_args(argv)
    profile = os.environ.get("BNNBOOK_PROFILE", "").strip().lower() or "default"
    # The Makefile exports MPLBACKEND=Agg (right for tests and scripts), but a kernel with Agg stores
    # no figures: the stored outputs need the inline backend.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    if args.time_only:  # keep the committed results/*.json of the stored runs untouched
        os.environ["BNNBOOK_RESULTS"] = tempfile.mkdtemp(prefix="bnnbook-results-")
    for path in args.notebooks:
        if not path.exists():
            print(f"no such notebook: {path}", file=sys.stderr)
            return 2
        nb = nbformat.read(path, as_version=4)
        started = time.time()
        client = NotebookClient(nb, timeout=args.timeout, kernel_name=args.kernel,
                                resources={"metadata": {"path": str(path.parent)}},
                                coalesce_streams=True, record_timing=False,
                                on_cell_executed=lambda cell, cell_index, **_: print_progress(
                                    path, cell, cell_index, len(nb.cells), started))
        client.execute()
        seconds = time.time() - started
        if path.resolve().parent.name == "chapters":  # the appendix is not a chapter to time
            record_time(path, profile, seconds)
        if not args.time_only:
            for cell in nb.cells:  # keep the saved notebook free of run-specific ids
                cell.get("metadata", {}).pop("execution", None)
            nbformat.write(nb, path)
        print(f"executed {path} in {seconds:.0f} s ({profile} profile)"
              f"{'' if not args.time_only else ', not written back'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
