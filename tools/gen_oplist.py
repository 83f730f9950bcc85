"""Write smsurgery/core/oplists/tf-X.Y.txt: the ops registered in the installed TensorFlow.

`check` compares a model's ops with such a list without starting TensorFlow.
Run it once per TensorFlow release, in a venv that has that release:

    python tools/gen_oplist.py            # writes smsurgery/core/oplists/tf-<installed>.txt

The list is TensorFlow's own op registry (`TF_GetAllOpList`, what the C API
sees after `import tensorflow`), with the graph-def version window on top.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    import tensorflow as tf
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    buffer = pywrap_tf_session.TF_GetAllOpList()
    op_list = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer))
    names = sorted({op.name for op in op_list.op})
    major_minor = ".".join(tf.__version__.split(".")[:2])
    target = Path(__file__).resolve().parents[1] / "smsurgery" / "core" / "oplists" / f"tf-{major_minor}.txt"
    header = [
        f"# ops registered in TensorFlow {tf.__version__}, written by tools/gen_oplist.py",
        f"# producer {tf.version.GRAPH_DEF_VERSION}",
        f"# min_consumer {tf.version.GRAPH_DEF_VERSION_MIN_CONSUMER}",
        f"# min_producer {tf.version.GRAPH_DEF_VERSION_MIN_PRODUCER}",
    ]
    target.write_text("\n".join(header + names) + "\n", encoding="utf-8")
    sys.stdout.write(f"{target}: {len(names)} ops\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
