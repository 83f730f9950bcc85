"""Which string inputs smsurgery made for image files, recorded in the model itself.

A `SignatureDef` has no free-form metadata in TF1 and an alias says nothing
reliable (Keras names inputs `keras_tensor_156`), so `image-input` writes
`assets.extra/smsurgery_inputs.json` into every version it publishes:

    {"schema": "smsurgery.inputs/1", "image_inputs": {"serving_b64": ["image_bytes"]}}

TensorFlow Serving ignores unknown files in assets.extra, the loaders never
read it, and every publish carries assets.extra over, so later versions
keep it. `request`, `run`, `warmup` and sample inputs read it to send real
images. A signature renamed afterwards loses its entry (the record names
keys); the alias heuristic still applies then. Pure: no TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

RECORD = "assets.extra/smsurgery_inputs.json"
SCHEMA = "smsurgery.inputs/1"


def read_record(version_dir: Path) -> dict[str, list[str]]:
    """signature key -> image input aliases; empty when there is no (readable) record."""
    try:
        data = json.loads((Path(version_dir) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    images = data.get("image_inputs") if isinstance(data, dict) else None
    if not isinstance(images, dict):
        return {}
    return {str(k): [str(a) for a in v] for k, v in images.items() if isinstance(v, list)}


def image_inputs(version_dir: Path, signature: str) -> frozenset[str]:
    return frozenset(read_record(version_dir).get(signature, ()))


def merge_record(
    staging: Path, source: Path, target: str, aliases: Sequence[str], moved_from_to: tuple[str, str] | None = None
) -> None:
    """Write the staging version's record: the source's, the original's entry moved, `target` set to `aliases`."""
    record = read_record(source)
    if moved_from_to is not None and moved_from_to[0] in record:
        record[moved_from_to[1]] = record.pop(moved_from_to[0])
    record.pop(target, None)
    if aliases:
        record[target] = sorted(aliases)
    path = Path(staging) / RECORD
    if not record:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": SCHEMA, "image_inputs": record}, indent=1, sort_keys=True) + "\n")
