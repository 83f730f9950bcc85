"""Node names out of tensor names, for readers: the one rule `show`, `check` and `integrity` need.

Kept out of `graphmodel` (its patterns and dataclasses cost ~4 ms of
import) so that a read command that never builds a graph model does not
import it; `graphmodel` re-exports `node_of`.
"""

from __future__ import annotations


def node_of(reference: str) -> str:
    """The node a tensor name or input entry names: `a:1`, `^a`, `a:out:0`, `x` -> `a`/`x`.

    The lenient form, for readers that walk graphs they did not write
    (show, check, scan, integrity): an odd name must not stop a report.
    Edits parse strictly with `parse_input`.
    """
    return reference.lstrip("^").split(":", 1)[0]
