"""The API page documents each module's ``__all__``: a public function or class left out of it is
missing from the book's reference, and a chapter's {func} link to it breaks the build."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "bnnbook"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def _exports_and_public_definitions(path: pathlib.Path):
    tree = ast.parse(path.read_text())  # parsed, not imported: the keras modules need no TensorFlow here
    exports = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            exports = set(ast.literal_eval(node.value))
    public = {node.name for node in tree.body
              if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")}
    return exports, public


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_public_function_and_class_is_exported(path):
    exports, public = _exports_and_public_definitions(path)
    if exports is None:
        pytest.skip("module has no __all__ (autodoc documents every public member)")
    assert not public - exports, f"{path.name}: add {sorted(public - exports)} to __all__ (or make them private)"
    defined_or_imported = public | {alias.asname or alias.name for node in ast.parse(path.read_text()).body
                                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    assigned = {t.id for node in ast.parse(path.read_text()).body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    assert exports <= defined_or_imported | assigned, f"{path.name}: __all__ names {sorted(exports - defined_or_imported - assigned)}, which it does not define"
