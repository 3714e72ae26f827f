"""bench/_record.py: every bench script's figures merged into results/bench.json per backend."""

import importlib.util
import json
import pathlib

import jax
import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "_record.py"


@pytest.fixture
def record(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_record", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results" / "bench.json")
    return module


def test_save_keys_by_backend_and_keeps_every_other_figure(record):
    record.RESULTS.parent.mkdir()
    record.RESULTS.write_text(json.dumps({"speed": {"gpu": {"ratio": 1.2}}, "other": {"cpu": {"x": 1}}}))
    saved = record.save("speed", {"ratio": 1.9})
    stored = json.loads(record.RESULTS.read_text())
    backend = jax.default_backend()
    assert stored["speed"][backend] == saved and saved["ratio"] == 1.9
    assert saved["jax"] == jax.__version__ and saved["device"].startswith(jax.devices()[0].platform)
    assert stored["other"] == {"cpu": {"x": 1}}
    if backend != "gpu":
        assert stored["speed"]["gpu"] == {"ratio": 1.2}


def test_a_record_from_before_backend_keys_is_kept_under_its_backend(record):
    record.RESULTS.parent.mkdir()
    old = {"ratio": 3.0, "backend": "tpu", "targets": {"a": 1}}
    record.RESULTS.write_text(json.dumps({"speed": old}))
    record.save("speed", {"ratio": 2.0})
    stored = json.loads(record.RESULTS.read_text())["speed"]
    assert stored["tpu"] == old and stored[jax.default_backend()]["ratio"] == 2.0


def test_save_creates_the_file(record):
    record.save("speed", {"ratio": 2.0})
    assert set(json.loads(record.RESULTS.read_text())) == {"speed"}
