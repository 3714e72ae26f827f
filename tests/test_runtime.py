"""bnnbook.runtime: profile selection, the device report, the results recorder."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from bnnbook import runtime


@pytest.mark.parametrize("accelerator, expected", [(True, "full"), (False, "quick")])
def test_default_profile_follows_the_hardware(accelerator, expected):
    assert runtime.resolve_profile(accelerator, env={}) == expected
    assert runtime.resolve_profile(accelerator, env={"BNNBOOK_PROFILE": "  "}) == expected


@pytest.mark.parametrize("value, expected", [("quick", "quick"), ("FULL", "full"), (" full ", "full")])
def test_environment_overrides_the_default(value, expected):
    for accelerator in (True, False):
        assert runtime.resolve_profile(accelerator, env={"BNNBOOK_PROFILE": value}) == expected


def test_bad_profile_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"BNNBOOK_PROFILE='fast'.*quick, full"):
        runtime.resolve_profile(False, env={"BNNBOOK_PROFILE": "fast"})


def test_start_prints_profile_backend_devices_and_versions(monkeypatch, capsys):
    monkeypatch.setenv("BNNBOOK_PROFILE", "quick")
    run = runtime.start("demo")
    out = capsys.readouterr().out
    assert run.profile == "quick" and run.quick and run.choose(quick=1, full=2) == 1
    assert "profile: quick" in out and f"backend: {run.backend}" in out and "jax" in out
    assert run.devices and all(device in out for device in run.devices)
    assert "jax" in run.versions and "optax" in run.versions


def test_start_rejects_bad_arguments():
    with pytest.raises(ValueError, match="framework='torch'"):
        runtime.start("demo", framework="torch", verbose=False)
    with pytest.raises(ValueError, match="chapter"):
        runtime.start("", verbose=False)


def test_import_bnnbook_loads_neither_jax_nor_tensorflow():
    code = ("import sys, bnnbook, bnnbook.data, bnnbook.metrics, bnnbook.ood, bnnbook.results, bnnbook.plots, "
            "bnnbook.runtime;"
            "print(any(m in sys.modules for m in ('jax', 'tensorflow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_jax_side_never_loads_tensorflow():
    code = ("import sys, bnnbook.nets, bnnbook.train, bnnbook.priors, bnnbook.likelihoods, bnnbook.vi, bnnbook.hmc;"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _run(profile):
    return runtime.Run(chapter="demo", profile=profile, framework="jax", backend="cpu",
                       devices=("cpu:0",), versions={"python": "3.x"})


def test_results_keep_one_entry_per_profile(tmp_path):
    runtime.save_results(_run("full"), {"accuracy": np.float32(0.98), "steps": np.int64(10)}, tmp_path)
    path = runtime.save_results(_run("quick"), {"accuracy": 0.9, "nested": {"a": 1.5}}, tmp_path)
    record = json.loads(path.read_text())
    assert set(record) == {"full", "quick"}
    assert record["full"]["metrics"]["accuracy"] == pytest.approx(0.98)
    assert record["full"]["metrics"]["steps"] == 10 and isinstance(record["full"]["metrics"]["steps"], int)
    assert record["quick"]["metrics"]["nested"] == {"a": 1.5}
    for entry in record.values():
        assert {"profile", "backend", "devices", "versions", "date", "framework"} <= set(entry)
    assert runtime.load_results("demo", "full", tmp_path)["metrics"]["accuracy"] == pytest.approx(0.98)


def test_results_refuse_non_finite_and_empty(tmp_path):
    with pytest.raises(ValueError, match="'loss'.*not finite"):
        runtime.save_results(_run("quick"), {"loss": math.nan}, tmp_path)
    with pytest.raises(ValueError, match="empty"):
        runtime.save_results(_run("quick"), {}, tmp_path)
    with pytest.raises(ValueError, match="'x'"):
        runtime.save_results(_run("quick"), {"x": object()}, tmp_path)
    assert not (tmp_path / "demo.json").exists()  # nothing half-written


def test_results_directory_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BNNBOOK_RESULTS", str(tmp_path / "r"))
    assert runtime.results_dir() == tmp_path / "r"
    with pytest.raises(FileNotFoundError, match="run that chapter first"):
        runtime.load_results("nothing-here")


def test_on_cpu_sets_the_default_device_only_inside_the_block():
    import jax
    import jax.numpy as jnp

    cpu = jax.devices("cpu")[0]
    before = jax.config.jax_default_device
    with runtime.on_cpu():
        assert jax.config.jax_default_device == cpu
        assert jnp.ones(3).devices() == {cpu}
        assert jax.jit(lambda x: 2 * x)(jnp.ones(3)).devices() == {cpu}
    assert jax.config.jax_default_device == before


@pytest.mark.parametrize("value, message", [("98%", "not a number"), (True, "not a number"),
                                            (np.array([1.0, 2.0]), "not a number"),
                                            (float("nan"), "not finite"), (np.float32(np.inf), "not finite")])
def test_glue_refuses_what_the_text_cannot_show(value, message):
    with pytest.raises(ValueError, match=f"accuracy.*{message}"):
        _run("quick").glue(accuracy=value)


def test_glue_stores_numbers_as_myst_nb_reads_them(monkeypatch):
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw, metadata: shown.append((data, raw, metadata)))
    _run("quick").glue(accuracy=np.float32(0.5), count=np.int64(3))
    prefix = "application/papermill.record/"
    assert shown == [({prefix + "text/plain": "0.5"}, True, {"scrapbook": {"name": "accuracy", "mime_prefix": prefix}}),
                     ({prefix + "text/plain": "3"}, True, {"scrapbook": {"name": "count", "mime_prefix": prefix}})]
    # the same output myst-nb's own glue writes (its reader takes exactly these keys)
    glue = pytest.importorskip("myst_nb.ext.glue")  # a book dependency: absent under `make unit`
    assert glue.GLUE_PREFIX == prefix
