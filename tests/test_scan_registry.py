"""`smsurgery/inspect/scan_registry.py` against the op registry of the installed TensorFlow.

scan skips the attributes of registered ops that declare no function-valued
attribute, so its table must be TensorFlow's. Run this module to rewrite the
table from the installed TensorFlow: `python -m tests.test_scan_registry`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from smsurgery.inspect.scan_ops import ADDED_IN_ISSUE_11, DENYLIST
from smsurgery.inspect.scan_registry import FUNC_ATTRS, PLAIN_OPS

pytestmark = pytest.mark.slow
TABLE = Path(__file__).resolve().parents[1] / "smsurgery" / "inspect" / "scan_registry.py"


def registry() -> dict[str, Any]:
    """Op name -> OpDef, for every op the installed TensorFlow registers."""
    from smsurgery.graph.session import import_tf

    import_tf()
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    ops = op_def_pb2.OpList.FromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    return {op.name: op for op in ops.op}


def func_attrs(ops: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    table = {
        name: tuple(sorted(a.name for a in op.attr if a.type in ("func", "list(func)"))) for name, op in ops.items()
    }
    return {name: attrs for name, attrs in table.items() if attrs}


def test_the_table_is_the_installed_registry() -> None:
    ops = registry()
    assert func_attrs(ops) == FUNC_ATTRS
    assert set(ops) - set(FUNC_ATTRS) == PLAIN_OPS


def test_every_op_added_in_issue_11_is_a_registered_op() -> None:
    """The ops added from the registry pass exist under these names (a typo would never match)."""
    ops = registry()
    assert set(ops) >= ADDED_IN_ISSUE_11, sorted(ADDED_IN_ISSUE_11 - set(ops))
    assert {"ReadFile", "WriteFile", "PrintV2", "PyFunc", "EagerPyFunc", "ImmutableConst"} <= set(ops) & set(DENYLIST)


def rewrite() -> None:
    """Regenerate the FUNC_ATTRS and PLAIN_OPS literals from the installed TensorFlow."""
    import tensorflow as tf

    ops = registry()
    table = func_attrs(ops)
    text = TABLE.read_text()
    head = text[: text.index("TENSORFLOW_VERSION")]
    rows = "".join(f"    {name!r}: {attrs!r},\n".replace("'", '"') for name, attrs in sorted(table.items()))
    plain = textwrap.indent(textwrap.fill(" ".join(sorted(set(ops) - set(table))), 110), "    ")
    TABLE.write_text(
        f'{head}TENSORFLOW_VERSION = "{".".join(tf.__version__.split(".")[:2])}"\n\n'
        f"FUNC_ATTRS: dict[str, tuple[str, ...]] = {{\n{rows}}}\n\n"
        f'_PLAIN_OPS_TEXT = """\n{plain}\n    """\nPLAIN_OPS: frozenset[str] = frozenset(_PLAIN_OPS_TEXT.split())\n'
    )


if __name__ == "__main__":
    rewrite()
