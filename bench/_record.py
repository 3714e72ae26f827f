"""Merge one benchmark's figures into results/bench.json, keyed by backend.

Every bench/ script saves through :func:`save`, so a CPU figure and a GPU
figure of the same benchmark sit side by side (``{"name": {"cpu": ...,
"gpu": ...}}``) and re-running one never drops the other or another script's.
"""

import datetime
import json
import pathlib

import jax

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results" / "bench.json"


def save(name: str, record: dict) -> dict:
    """Store ``record`` (plus device, JAX version and date) under ``name`` and this run's backend."""
    device = jax.devices()[0]
    record = {**record, "device": f"{device.platform}:{getattr(device, 'device_kind', '')}",
              "jax": jax.__version__, "date": datetime.date.today().isoformat()}
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    entry = merged.get(name, {})
    if not all(isinstance(value, dict) for value in entry.values()):
        # A record from before figures were keyed by backend: kept, under the backend it names.
        backend = entry.get("backend") or str(entry.get("device", "unknown")).split(":")[0]
        entry = {backend: entry}
    entry[jax.default_backend()] = record
    merged[name] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return record
