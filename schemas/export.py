"""JSON Schema files made from the models: one per event type, one for the event union, one for alerts."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.alerts import Alert
from schemas.events import EVENT_MODELS, event_adapter


def schemas() -> dict[str, dict]:
    """File name → JSON Schema."""
    out = {f"{name}.json": model.model_json_schema() for name, model in EVENT_MODELS.items()}
    out["event.json"] = event_adapter.json_schema()
    out["alert.json"] = Alert.model_json_schema()
    return out


def export(directory: str | Path) -> list[Path]:
    """Write every schema into `directory` (created when missing); returns the files written."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = target / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
