"""Pure edits of a meta graph (protos in, protos out) and the draft that chains them.

Each edit kind registers itself; `draft.Draft` holds the edited copy until it is published.
"""
