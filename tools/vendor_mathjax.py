"""Copy the parts of MathJax 3 the book uses into _mathjax/mathjax (not _static:
Jupyter Book would load every .js file there), so the built book renders formulas offline (no CDN).

MathJax comes from the PyPI package ``django-static-mathjax`` (pinned in
requirements/book.txt), which ships MathJax's ``es5`` build. We copy the
combined TeX + MathML -> CommonHTML component, the TeX extensions it loads on
demand, the CommonHTML fonts, and the menu/accessibility pieces it may load;
``_config.yml`` points ``mathjax_path`` at the copy. The copy is ignored by git.

Usage: python tools/vendor_mathjax.py [destination]   (default: _mathjax/mathjax)
"""

import importlib.util
import pathlib
import shutil
import sys

PARTS = ("tex-mml-chtml.js", "input/tex", "input/mml", "output/chtml", "ui", "a11y", "adaptors", "sre")


def main(argv) -> int:
    destination = pathlib.Path(argv[1] if len(argv) > 1 else "_mathjax/mathjax")
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        print("MathJax is missing: pip install django-static-mathjax==3.2.2.1 (it is in requirements/book.txt)",
              file=sys.stderr)
        return 2
    es5 = pathlib.Path(spec.origin).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").exists():
        print(f"{es5} has no tex-mml-chtml.js; reinstall django-static-mathjax==3.2.2.1", file=sys.stderr)
        return 2
    stamp = destination / ".source"
    if stamp.exists() and stamp.read_text() == str(es5):
        return 0  # already copied from this installation
    shutil.rmtree(destination, ignore_errors=True)
    for part in PARTS:
        source, target = es5 / part, destination / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.exists():
            shutil.copy2(source, target)
    stamp.write_text(str(es5))
    print(f"MathJax copied from {es5} to {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
