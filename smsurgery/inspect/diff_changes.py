"""The changes `diff` reports and their verdicts: one value per difference, and how they add up.

Shared by the interface comparison (`diff`) and the deep one (`diff_deep`):
a change kind, its verdict, the exit status a set of changes gives, and
the generic comparison of two keyed collections with likely renames.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

BREAKING = "breaking"
COMPATIBLE = "compatible"
INTERNAL = "internal"
VERDICTS = (BREAKING, COMPATIBLE, INTERNAL)
UNCHANGED = "unchanged"
EXIT_UNCHANGED = 0
EXIT_COMPATIBLE = 1  # only compatible or internal changes
EXIT_BREAKING = 3  # 2 is left to errors (SmsurgeryError)
RENAMED_NOTE = "renamed (likely)"
T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    """One difference between the old and the new version.

    `kind` is `<subject>_<removed|added|changed>` (subjects: tag_set,
    default_signature, init_op, signature, method, input, output, variable,
    file). `alias` names an input or output; `name` a variable, a file or
    the init op; `field` the attribute that changed.
    """

    kind: str
    verdict: str
    signature: str | None = None
    alias: str | None = None
    name: str | None = None
    field: str | None = None
    old: Any = None
    new: Any = None
    note: str | None = None
    counterpart: str | None = None  # the other half of a likely rename

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summary(changes: Iterable[Change]) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS, 0)
    for change in changes:
        counts[change.verdict] += 1
    return counts


def overall_verdict(changes: Iterable[Change]) -> str:
    """The worst verdict: breaking > compatible > internal; `unchanged` if none."""
    counts = summary(changes)
    return next((v for v in VERDICTS if counts[v]), UNCHANGED)


def exit_status(changes: Iterable[Change]) -> int:
    """0 no changes, 1 only compatible or internal ones, 3 anything breaking."""
    verdict = overall_verdict(changes)
    if verdict == UNCHANGED:
        return EXIT_UNCHANGED
    return EXIT_BREAKING if verdict == BREAKING else EXIT_COMPATIBLE


def compare_members(
    kind: str,
    old: dict[str, T],
    new: dict[str, T],
    *,
    key_field: str,
    verdicts: tuple[str, str],
    interface: Callable[[T], Hashable],
    to_json: Callable[[T], Any],
    both: Callable[[str, T, T], list[Change]],
    context: dict[str, Any] | None = None,
) -> list[Change]:
    """Removed, added and common members of two keyed collections, in key order.

    `verdicts` are those of a removal and an addition; the added half of a
    likely rename takes the worse of the two (a renamed output still breaks).
    """
    removed = {k: v for k, v in old.items() if k not in new}
    added = {k: v for k, v in new.items() if k not in old}
    renamed = likely_renames(removed, added, interface)
    partner = {**renamed, **{b: a for a, b in renamed.items()}}
    changes: list[Change] = []
    for key in sorted(old.keys() | new.keys()):
        where: dict[str, Any] = {key_field: key, **(context or {})}
        if key in partner:
            where.update(note=RENAMED_NOTE, counterpart=partner[key])
        if key in removed:
            changes.append(Change(f"{kind}_removed", verdicts[0], old=to_json(removed[key]), **where))
        elif key in added:
            verdict = worst(verdicts) if key in partner else verdicts[1]
            changes.append(Change(f"{kind}_added", verdict, new=to_json(added[key]), **where))
        else:
            changes += both(key, old[key], new[key])
    return changes


def presence(subject: str, before: Any, after: Any, verdicts: tuple[str, str, str], **where: Any) -> list[Change]:
    """One value on either side (None: absent); `verdicts` for removed, added, changed."""
    if before == after:
        return []
    index = 1 if before is None else 0 if after is None else 2
    action, verdict = ("removed", "added", "changed")[index], verdicts[index]
    return [Change(f"{subject}_{action}", verdict, old=before, new=after, **where)]


def worst(verdicts: Iterable[str]) -> str:
    given = set(verdicts)
    return next(v for v in VERDICTS if v in given)


def likely_renames(removed: dict[str, T], added: dict[str, T], interface: Callable[[T], Hashable]) -> dict[str, str]:
    """Removed name -> added name, where each is the other's only match in what clients see."""
    by_old: dict[Hashable, list[str]] = {}
    by_new: dict[Hashable, list[str]] = {}
    for name, item in removed.items():
        by_old.setdefault(interface(item), []).append(name)
    for name, item in added.items():
        by_new.setdefault(interface(item), []).append(name)
    return {
        names[0]: by_new[key][0] for key, names in by_old.items() if len(names) == 1 and len(by_new.get(key, [])) == 1
    }
