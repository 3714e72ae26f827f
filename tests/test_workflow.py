"""The GitHub Pages workflow (GitHub Actions cannot run here, so its file is checked)."""

import pathlib

import pytest

yaml = pytest.importorskip("yaml")

WORKFLOW = pathlib.Path(__file__).resolve().parents[1] / ".github" / "workflows" / "book.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _runs(job) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _uses(job) -> list[str]:
    return [step.get("uses", "") for step in job["steps"]]


def test_workflow_builds_the_book_on_main_and_deploys_it_to_pages():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert "main" in triggers["push"]["branches"]
    jobs = workflow["jobs"]
    build, deploy = jobs["build"], jobs["deploy"]
    assert "make book" in _runs(build)
    assert "make test" not in _runs(build)  # the book renders from stored outputs: no execution
    assert any(u.startswith("actions/upload-pages-artifact@") for u in _uses(build))
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert any(u.startswith("actions/deploy-pages@") for u in _uses(deploy))
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"


def test_workflow_runs_the_tests_on_pull_requests_only():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))
    assert "pull_request" in triggers
    test = workflow["jobs"]["test"]
    assert "make test" in _runs(test)
    assert "pull_request" in test["if"] and "!=" not in test["if"]
    for name in ("build", "deploy"):
        assert "!= 'pull_request'" in workflow["jobs"][name]["if"]
