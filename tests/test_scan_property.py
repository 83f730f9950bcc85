"""Property: one risky op, hidden anywhere in a random nest of functions, is always found.

Pure protos, no TensorFlow: a MetaGraphDef is built (tests/hostile/scan_corpus.py) from an entry (what runs
it: a signature, the main op, the saver, a node nothing reaches, a function
of the object graph) and a chain of links, each a way a graph names code to
run (a call by op name, PartitionedCall, a func or list(func) attr of a
custom op, a function inside a NameAttrList's own attrs, attr placeholders
resolved one or two calls away, If/While/Case and their stateless forms,
a gradient, an `api_implements` sibling, a graph serialized into a Const
for DatasetFromGraph). Decoy functions and nodes around it. `scan` must
report the op in the group its entry implies, naming its node, function and
embedding.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsurgery.inspect.scan import DENYLIST, scan_meta_graph
from tests.hostile.scan_corpus import (
    EMBEDDED_HOME,
    EMBEDDING,
    ENTRIES,
    LINKS,
    MAX_LINKS,
    OPAQUE,
    RISKY,
    build,
    findings_of,
)

placements = st.tuples(
    st.sampled_from(ENTRIES),
    st.lists(st.sampled_from(LINKS), max_size=MAX_LINKS),
    st.sampled_from([*RISKY, *OPAQUE]),
    st.integers(0, 3),
)
SEEN: set[tuple[str, tuple[str, ...]]] = set()


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(placement=placements)
def test_one_risky_op_anywhere_in_a_nest_is_always_found(placement: tuple[str, list[str], str, int]) -> None:
    entry, links, risky, decoys = placement
    SEEN.add((entry, tuple(links)))
    meta, _ = build(entry, links, risky, decoys)
    embedded = bool(EMBEDDED_HOME & set(links))  # the op lives in a serialized graph
    result = scan_meta_graph(meta)
    op = "DatasetFromGraph" if risky in OPAQUE else risky
    found = [f for f in findings_of(result, entry) if f.node == "risky"]
    assert len(found) == 1, (entry, links, risky, result.to_json())
    [finding] = found
    assert finding.op == op and finding.category == DENYLIST[op][0]
    last = max((i for i, link in enumerate(links) if link in EMBEDDING), default=None)
    tail = links if last is None else links[last + 1 :]
    in_function = bool(tail) or (last is not None and links[last] == "embedded_outer_call")
    in_function = in_function or (entry == "object_graph" and last is None)
    assert (finding.function is not None) == in_function, (links, finding)
    assert (finding.embedded_in is not None) == embedded, (links, finding)
    assert result.count == 1, result.to_json()  # decoys and clean paths add nothing
    assert result.signatures["clean"] == []


def test_the_generator_covers_every_link_and_entry() -> None:
    """Runs after the property (file order): counts the kinds of placement it produced."""
    if not SEEN:  # run alone (-k): generate some first
        test_one_risky_op_anywhere_in_a_nest_is_always_found()
    links = {link for _entry, chain in SEEN for link in chain}
    assert links == set(LINKS)
    assert {entry for entry, _chain in SEEN} == set(ENTRIES)
    possible = len(ENTRIES) * sum(len(LINKS) ** k for k in range(MAX_LINKS + 1))
    print(f"\nplacements generated: {len(SEEN)} distinct (entry, chain) of {possible} possible")
