"""Typed changes the cache hands to its subscribers.

A `Batch` is what one etcd revision range produced, in order; `changes` are
already decoded, and their messages are shared and read-only (copy before
changing one). A re-list after compaction arrives as one batch that
carries the difference between the old and the new content.
"""

from __future__ import annotations

import dataclasses

from google.protobuf import message

from shoal.controller.store.keys import Kind


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One object created (old is None), updated, or deleted (new is None)."""

    kind: Kind
    old: message.Message | None
    new: message.Message | None

    @property
    def obj(self) -> message.Message:
        """The object as it is now, or as it was last for a deletion."""
        return self.new if self.new is not None else self.old  # type: ignore[return-value]

    @property
    def deleted(self) -> bool:
        """True for a deletion."""
        return self.new is None

    @property
    def created(self) -> bool:
        """True for a creation."""
        return self.old is None


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """Changes up to and including etcd revision `revision`."""

    revision: int
    changes: tuple[Change, ...]
