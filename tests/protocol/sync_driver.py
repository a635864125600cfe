"""A minimal stand-in for the node's sync loop, driving Automerge through a SyncSession (tests and bench)."""
from __future__ import annotations

import automerge.core as am

from preau.protocol.sync import DocumentSettled, SyncComplete
from preau.protocol.wire import Offer, SyncMessage


class Side:
    def __init__(self, session, docs: dict[str, am.Document]):
        self.session = session
        self.docs = docs
        self.states: dict[str, am.SyncState] = {}
        self.events: list = []
        self.bytes_sent = 0

    def start(self, offers: dict[str, bytes | None]) -> None:
        self.session.offer(offers)

    def handle(self, events) -> None:
        self.events += events
        for ev in events:
            if isinstance(ev, SyncMessage):
                doc = self.docs.setdefault(ev.doc_id, am.Document())
                doc.receive_sync_message(self.states.setdefault(ev.doc_id, am.SyncState()), am.Message.decode(ev.data))
        for doc_id in sorted(self.session.awaiting_reply):
            self.reply(doc_id)

    def reply(self, doc_id: str) -> None:
        doc = self.docs.setdefault(doc_id, am.Document())
        msg = doc.generate_sync_message(self.states.setdefault(doc_id, am.SyncState()))
        self.events += self.session.sync(doc_id, msg.encode() if msg is not None else None)

    def flush(self) -> bytes:
        out = self.session.data_to_send()
        self.bytes_sent += len(out)
        return out


def exchange(a: Side, b: Side, limit: int = 200) -> None:
    for _ in range(limit):
        out_a, out_b = a.flush(), b.flush()
        if not out_a and not out_b:
            return
        if out_a:
            b.handle(b.session.receive_data(out_a))
        if out_b:
            a.handle(a.session.receive_data(out_b))
    raise AssertionError("sync did not settle")


def sync_all(a: Side, b: Side, a_offers, b_offers, a_wants_filter=lambda d: True, b_wants_filter=lambda d: True) -> None:
    """Offer, want what the other offered (filtered), start every wanted document, run to completion."""
    a.start(a_offers)
    b.start(b_offers)
    exchange(a, b)
    a.session.want([d for d in a.session.peer_offers if a_wants_filter(d)])
    b.session.want([d for d in b.session.peer_offers if b_wants_filter(d)])
    for side in (a, b):
        for doc_id in sorted(side.session.docs):
            side.reply(doc_id)
    exchange(a, b)
    for side in (a, b):
        side.events += side.session.done()
    exchange(a, b)


def completed(side: Side) -> SyncComplete | None:
    found = [e for e in side.events if isinstance(e, SyncComplete)]
    return found[0] if found else None


def settled(side: Side) -> set[str]:
    return {e.doc_id for e in side.events if isinstance(e, DocumentSettled)}


__all__ = ["Side", "exchange", "sync_all", "completed", "settled", "Offer"]
