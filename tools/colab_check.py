"""Run the first cells of a JAX chapter and a TF chapter the way Colab would (``make colab-check``).

Colab starts from its own recent jax, tensorflow, tf_keras, tensorflow-probability,
matplotlib and IPython, not from this book's lock file, and the first cell of every
chapter installs ``bnnbook`` with pip. This script reproduces that:

1. build a wheel of this checkout (it stands in for the ``git+<repository>`` URL of the
   install cell, which would fetch the tagged release instead of the code under test);
2. create a fresh virtualenv and install the packages Colab ships that matter here,
   unpinned (the newest releases, as on Colab), then the wheel with its declared
   dependency ranges (``pyproject.toml``), as the install cell's pip would;
3. run, in the quick profile, the first code cells of chapter 1 (JAX) and the install
   cell plus the first TensorFlow cell of chapter "Flipout" (the Bayesian LeNet-5).

The results these cells write go to a temporary folder, never to ``results/``.
Differences from Colab: this machine's Python (Colab's may be newer), no GPU, and the
data sets come from ``BNNBOOK_DATA`` when it is set (on Colab they are downloaded).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What Colab ships that bnnbook's chapters use; unpinned on purpose.
COLAB_PACKAGES = ["jax", "jaxlib", "tensorflow", "tf-keras", "tensorflow-probability", "matplotlib", "ipython"]
# (chapter, indices of its code cells to run): the install cell first, then the first real work.
CELLS = {"chapters/01_why_bnn.ipynb": [0, 1, 2, 3],
         "chapters/05_flipout.ipynb": [0, 8]}


def _code_cells(path: pathlib.Path) -> list[str]:
    notebook = json.loads(path.read_text())
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def _script(path: pathlib.Path, indices: list[int]) -> str:
    cells = _code_cells(path)
    missing = [i for i in indices if i >= len(cells)]
    if missing:
        raise SystemExit(f"{path.name} has {len(cells)} code cells; CELLS asks for {missing}")
    # Line magics and shell escapes are IPython syntax; the chapters' first cells have none, but be safe.
    body = "\n\n".join("\n".join(line for line in cells[i].splitlines() if not line.lstrip().startswith(("%", "!")))
                       for i in indices)
    return "import matplotlib\nmatplotlib.use('Agg')\n" + body + "\nprint('colab-check: cells ran')\n"


def _run(command: list[str], **kwargs) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=None, help="where to create the virtualenv (default: a temporary folder)")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bnnbook-colab-") as scratch:
        scratch = pathlib.Path(scratch)
        venv = pathlib.Path(args.venv) if args.venv else scratch / "venv"
        wheels = scratch / "wheels"
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)])
        wheel = next(wheels.glob("bnnbook-*.whl"))
        _run([sys.executable, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *COLAB_PACKAGES])
        _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)])
        versions = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True,
                                  text=True).stdout
        shown = [line for line in versions.splitlines()
                 if line.split("==")[0].lower() in {"jax", "tensorflow", "tf-keras", "tensorflow-probability",
                                                     "dm-haiku", "optax", "blackjax", "bnnbook"}]
        print("installed:", ", ".join(shown), flush=True)
        env = {**os.environ, "BNNBOOK_PROFILE": "quick", "BNNBOOK_RESULTS": str(scratch / "results"),
               "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
        for chapter, indices in CELLS.items():
            script = scratch / (pathlib.Path(chapter).stem + ".py")
            script.write_text(_script(ROOT / chapter, indices))
            # Run outside the checkout, so that `import bnnbook` finds the installed wheel, not the source tree.
            _run([python, str(script)], cwd=scratch, env=env)
            print(f"colab-check: {chapter} code cells {indices} ran ({(time.time() - started) / 60:.1f} min so far)",
                  flush=True)
    print(f"colab-check passed in {(time.time() - started) / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
