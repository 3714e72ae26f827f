"""Check the built HTML book the way a reader meets it, offline.

1. Every internal link, image, script and stylesheet of every page points at a
   file that exists (and every ``#anchor`` at an id on that page).
2. No page loads a script or stylesheet from the network (the book works offline).
3. Every figure (<img>) is a file that decodes as an image.
4. With Chromium (Debian's ``chromium``): each page with math is opened
   headless from disk and, after its scripts ran, every formula must have
   been typeset by the local MathJax (``mjx-container``), with no MathJax errors.

Usage: python tools/check_book.py [_build/html] [--no-browser]
Exit status 0 when every check passes; the problems are listed otherwise.
"""

from __future__ import annotations

import html.parser
import pathlib
import shutil
import subprocess
import sys
import tempfile
import urllib.parse


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.math = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for attribute in ("href", "src"):
            if attrs.get(attribute) and tag in ("a", "img", "script", "link"):
                self.refs.append((tag, attribute, attrs[attribute]))
        classes = (attrs.get("class") or "").split()
        if "math" in classes:
            self.math += 1


def _parse(path: pathlib.Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(errors="replace"))
    return page


def static_checks(root: pathlib.Path) -> tuple[list[str], dict[pathlib.Path, _Page]]:
    problems = []
    pages = {p: _parse(p) for p in sorted(root.rglob("*.html")) if "_static" not in p.parts}
    for path, page in pages.items():
        for tag, attribute, value in page.refs:
            parsed = urllib.parse.urlparse(value)
            if parsed.scheme in ("http", "https") or value.startswith("//"):
                if tag in ("script", "link") and (tag == "script" or "stylesheet" in value or value.endswith(".css")):
                    problems.append(f"{path.relative_to(root)}: loads {value} from the network")
                continue
            if parsed.scheme in ("mailto", "javascript", "data"):
                continue
            target = (path.parent / urllib.parse.unquote(parsed.path)).resolve() if parsed.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{path.relative_to(root)}: <{tag} {attribute}={value!r}> points at a missing file")
                continue
            if parsed.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if parsed.fragment not in ids:
                    problems.append(f"{path.relative_to(root)}: link {value!r} names a missing anchor")
    return problems, pages


def _image_problems(root: pathlib.Path, pages: dict) -> list[str]:
    """Every <img> of every page must be a file that decodes as an image."""
    from PIL import Image

    problems, seen = [], set()
    for path, page in pages.items():
        for tag, _, value in page.refs:
            if tag != "img" or urllib.parse.urlparse(value).scheme:
                continue
            target = (path.parent / urllib.parse.unquote(urllib.parse.urlparse(value).path)).resolve()
            if target in seen or not target.exists() or target.suffix.lower() == ".svg":
                continue
            seen.add(target)
            try:
                with Image.open(target) as image:
                    image.verify()
            except Exception as exc:  # any decoding failure is a broken figure
                problems.append(f"{path.relative_to(root)}: image {value} does not decode ({exc})")
    return problems


def browser_checks(root: pathlib.Path, pages: dict[pathlib.Path, _Page], chromium: str) -> list[str]:
    """Open each page headless from disk and count what MathJax typeset."""
    problems = []
    for path, page in pages.items():
        if path.name in ("genindex.html", "search.html", "py-modindex.html") or not page.math:
            continue
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=20000", "--dump-dom",
             path.as_uri()],
            capture_output=True, text=True, timeout=180)
        dom = result.stdout
        name = path.relative_to(root)
        typeset = dom.count("<mjx-container")
        errors = dom.count("<mjx-merror") + dom.count('data-mjx-error')
        print(f"  {name}: {page.math} formulas in the page, {typeset} typeset by MathJax, {errors} errors")
        if not dom:
            problems.append(f"{name}: Chromium returned no DOM ({result.stderr.strip()[-200:]})")
        elif typeset < page.math:
            problems.append(f"{name}: only {typeset} of {page.math} formulas were typeset (is MathJax loading?)")
        if errors:
            problems.append(f"{name}: {errors} formulas failed to typeset (MathJax errors)")
    return problems


def main(argv) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    root = pathlib.Path(args[0] if args else "_build/html").resolve()
    if not (root / "index.html").exists():
        print(f"no built book at {root}; run `make book` first", file=sys.stderr)
        return 2
    problems, pages = static_checks(root)
    problems += _image_problems(root, pages)
    print(f"checked links, resources and images of {len(pages)} pages")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if "--no-browser" not in argv:
        if chromium is None:
            problems.append("Chromium is not installed (apt-get install chromium); cannot check rendering. "
                            "Pass --no-browser to skip this check.")
        else:
            problems += browser_checks(root, pages, chromium)
    for problem in problems:
        print("PROBLEM:", problem)
    print("book check:", "ok" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
