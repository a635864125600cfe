"""Safe wrappers around `automerge.core` for bytes that come from elsewhere.

Automerge raises plain `Exception`s, and a Rust panic arrives as
`pyo3_runtime.PanicException`, which derives from `BaseException` and so slips
past `except Exception`. Every call here that parses outside bytes turns both
into a typed `CrdtError`, so the node can drop the input and carry on.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterable, Iterator, Sequence

from automerge.core import Document, Message, SyncState

from .errors import CrdtError, DocumentError, ForeignChangeError, SyncMessageError
from .weight import MAX_INFLATED, MAX_ROWS, Weight, weigh

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_ACTOR_LABEL = b"preau/v1/actor"
BYTES_LIKE = (bytes, bytearray, memoryview)


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


@contextlib.contextmanager
def _guard(error: type[Exception], what: str) -> Iterator[None]:
    """Turn Automerge's untyped errors and panics into `error`, keeping KeyboardInterrupt and friends."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError, CrdtError):
        raise
    except BaseException as exc:  # noqa: BLE001 - PanicException is a BaseException
        if not isinstance(exc, Exception) and not _is_panic(exc):
            raise
        detail = "the Automerge library crashed on it" if _is_panic(exc) else str(exc)[:200]
        raise error(f"{what}: {detail}") from None


def _bytes_in(data, error: type[CrdtError], what: str, limit: int | None = None, refusal: str = "") -> bytes:
    """Outside input as an immutable copy, refused before any parser sees it if it is not bytes or is over `limit`."""
    if not isinstance(data, BYTES_LIKE):
        raise error(f"a {what} must be given as bytes")
    data = bytes(data)
    if limit is not None and len(data) > limit:
        raise error(f"the {what} is larger than {limit} bytes{refusal}")
    return data


def actor_for(owner: bytes, doc_id: str) -> bytes:
    """The owner's Automerge actor id for one document, derived so no randomness is read."""
    return hashlib.sha256(_ACTOR_LABEL + b"\x00" + owner + b"\x00" + doc_id.encode()).digest()[:16]


def load_document(data: bytes) -> Document:
    """Load a saved document; raise DocumentError on bad bytes (never a panic)."""
    data = _bytes_in(data, DocumentError, "document", MAX_DOCUMENT_BYTES, "; refusing to load it")
    with _guard(DocumentError, "these bytes are not a valid Automerge document"):
        return Document.load(data)


def save_document(doc: Document) -> bytes:
    with _guard(DocumentError, "the document could not be saved"):
        return doc.save()


def change_hashes(doc: Document) -> set[bytes]:
    with _guard(DocumentError, "the document's history could not be read"):
        return {c.hash for c in doc.get_changes([])}


def changes_since(doc: Document, heads: Sequence[bytes]) -> set[bytes]:
    """The hashes of the changes that are not in the history of `heads` (those `doc` gained since it had them)."""
    with _guard(DocumentError, "the document's history could not be read"):
        return {c.hash for c in doc.get_changes(list(heads))}


def has_heads(doc: Document, heads: Iterable[bytes]) -> bool:
    """True if the document holds every head (hashes chain, so then it holds their whole past)."""
    wanted = set(heads)
    if not wanted:
        return True
    return wanted <= change_hashes(doc)


def fork_at(doc: Document, heads: Sequence[bytes]) -> Document:
    """A copy of the document exactly at `heads`, without any change that is not their ancestor.

    This is how a reader drops changes a relay forged (even under the owner's
    actor id, where they would block the owner's genuine next change): fork at
    the last verified heads, then sync again from the owner with a fresh SyncState.
    """
    heads = list(heads)
    if not has_heads(doc, heads):
        raise DocumentError("cannot go back to heads this document does not hold")
    with _guard(DocumentError, "the document could not be forked"):
        return doc.fork(heads) if heads else Document.load(b"")


def generate_sync_message(doc: Document, state: SyncState) -> bytes | None:
    """The next sync message for a peer, or None when that peer is known to be up to date."""
    with _guard(SyncMessageError, "no sync message could be generated"):
        msg = doc.generate_sync_message(state)
        return None if msg is None else msg.encode()


def receive_sync_message(doc: Document, state: SyncState, data: bytes, *, accept_changes: bool = True,
                         max_rows: int = MAX_ROWS, max_bytes: int = MAX_INFLATED) -> Weight:
    """Apply a peer's sync message and return its weight; raise SyncMessageError on bad bytes.

    The message is weighed first (`weight.weigh`): one that would build more
    than `max_rows` operations, or hold more than `max_bytes` once inflated,
    is refused before Automerge reads it (a 142-byte message could otherwise
    cost 3.6 s and 630 MB to apply).

    With `accept_changes=False` (a node syncing a document it owns) the message
    is first tried on a copy, and any change it would bring in is refused with
    ForeignChangeError, leaving the document untouched: an owner never takes
    changes into its own documents, so a relay cannot slip one under its signature.
    Start a fresh SyncState for that peer after any error.
    """
    data = _bytes_in(data, SyncMessageError, "sync message", MAX_MESSAGE_BYTES)
    weight = weigh(data, max_rows=max_rows, max_bytes=max_bytes)
    with _guard(SyncMessageError, "this sync message is not valid"):
        msg = Message.decode(data)
    if not accept_changes:
        with _guard(SyncMessageError, "this sync message could not be applied"):
            before = doc.get_heads()
            trial = doc.fork()
            trial.receive_sync_message(state, msg)
            if sorted(trial.get_heads()) != sorted(before):
                raise ForeignChangeError(
                    "a peer sent changes into a document this node owns; they were refused. "
                    "Only the owner writes its documents: check which node is relaying."
                )
        return weight
    with _guard(SyncMessageError, "this sync message could not be applied"):
        doc.receive_sync_message(state, msg)
    return weight


def merge_document(doc: Document, other: Document | bytes) -> None:
    """Merge another copy (or its saved bytes) into `doc`; raise DocumentError on bad input.

    Merge order never matters for the result (that is the CRDT), but merging
    takes every change, forged ones included: read only at verified heads.
    """
    if isinstance(other, BYTES_LIKE):
        other = load_document(other)
    with _guard(DocumentError, "the documents could not be merged"):
        doc.merge(other)
