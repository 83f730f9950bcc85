"""Write a checkpoint again with only some of its entries, through TensorFlow's own reader and writer.

Prune drops variables no signature reads; their entries must leave
`variables/` too, and a checkpoint is a bundle (a LevelDB table of entries,
checksummed shards) that only TensorFlow should write. The kept tensors are
read with `tf.train.load_checkpoint` and written with `tf.raw_ops.SaveV2`,
a bounded batch at a time into temporary bundles that
`tf.raw_ops.MergeV2Checkpoints` merges into `variables/variables`: memory
stays about one batch, whatever the checkpoint's size. Entries are written
whole (no slice spec): `RestoreV2` reads a slice of a whole entry as well.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from smsurgery.core.errors import PublishError
from smsurgery.graph.session import first_line, import_tf
from smsurgery.storage.mirror import materialize

BATCH_BYTES = 256 * 1024 * 1024
PREFIX = "variables"


def _batches(names: list[str], sizes: Mapping[str, int]) -> list[list[str]]:
    batches: list[list[str]] = [[]]
    total = 0
    for name in names:
        if batches[-1] and total + sizes.get(name, 0) > BATCH_BYTES:
            batches.append([])
            total = 0
        batches[-1].append(name)
        total += sizes.get(name, 0)
    return batches


def _value(reader: Any, name: str, new_values: Mapping[str, Callable[[bytes], bytes]]) -> Any:
    value = reader.get_tensor(name)
    return new_values[name](value) if name in new_values else value


def rewrite_checkpoint(
    source_dir: Path,
    target_dir: Path,
    keep: Collection[str],
    sizes: Mapping[str, int] | None = None,
    new_values: Mapping[str, Callable[[bytes], bytes]] | None = None,
) -> list[str]:
    """Write `target_dir/variables.*` holding the entries of `source_dir/variables` named in `keep`.

    `new_values` rewrites string entries on the way (old bytes -> new bytes):
    a TF2 export's `_CHECKPOINTABLE_OBJECT_GRAPH` loses the pruned objects.

    `target_dir`'s old checkpoint files (hard links to the source's, in a
    staging folder) are unlinked first, never written through. Returns the
    names written.
    """
    tf = import_tf()
    try:
        materialize(source_dir)  # a mirror of a remote version: the real shards first
        reader = tf.train.load_checkpoint(str(source_dir / PREFIX))
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as error:  # TensorFlow raises its own kinds
        raise PublishError(f"cannot read the checkpoint {source_dir / PREFIX}: {first_line(error)}") from error
    names = sorted(name for name in dtypes if name in keep)
    for old in target_dir.glob(f"{PREFIX}.*"):
        old.unlink()
    work = target_dir / ".prune-rewrite"
    parts: list[str] = []
    try:
        for number, batch in enumerate(_batches(names, sizes or {})):
            (work / f"part-{number}").mkdir(parents=True, exist_ok=True)
            part = str(work / f"part-{number}" / PREFIX)
            tensors = [tf.constant(_value(reader, name, new_values or {}), dtype=dtypes[name]) for name in batch]
            tf.raw_ops.SaveV2(prefix=part, tensor_names=batch, shape_and_slices=[""] * len(batch), tensors=tensors)
            parts.append(part)
        tf.raw_ops.MergeV2Checkpoints(
            checkpoint_prefixes=parts, destination_prefix=str(target_dir / PREFIX), delete_old_dirs=True
        )
    except Exception as error:
        raise PublishError(f"TensorFlow could not write the pruned checkpoint: {first_line(error)}") from error
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return names
