"""The API page documents each module's ``__all__``: a public function or class left out of it is
missing from the book's reference, and a chapter's {func} link to it breaks the build."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "bnnbook"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _module_names(path: pathlib.Path):
    """``(__all__ or None, public functions and classes, every top-level name)`` of a module.

    Parsed, not imported: the keras modules need no TensorFlow here.
    """
    exports, public, defined = None, set(), set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
            if not node.name.startswith("_"):
                public.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            defined.update(names)
            if "__all__" in names:
                exports = set(ast.literal_eval(node.value))
    return exports, public, defined


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_public_function_and_class_is_exported(path):
    exports, public, defined = _module_names(path)
    if exports is None:
        pytest.skip("module has no __all__ (autodoc documents every public member)")
    assert not public - exports, f"{path.name}: add {sorted(public - exports)} to __all__ (or make them private)"
    assert exports <= defined, f"{path.name}: __all__ names {sorted(exports - defined)}, which it does not define"
