"""Every connection state and transition, in one table.

A (state, input) pair missing from TRANSITIONS is a protocol violation: by
the peer for inputs named recv_*, by our caller otherwise. "error" and "eof"
are accepted in every state and lead to ERROR (or stay CLOSED).
"""
from __future__ import annotations

import enum


class State(enum.Enum):
    # initiator
    AWAIT_HANDSHAKE_2 = "await_handshake_2"
    AWAIT_WELCOME = "await_welcome"
    # responder
    AWAIT_HANDSHAKE_1 = "await_handshake_1"
    AWAIT_HANDSHAKE_3 = "await_handshake_3"
    # both
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    ERROR = "error"


HANDSHAKE_STATES = frozenset({State.AWAIT_HANDSHAKE_1, State.AWAIT_HANDSHAKE_2, State.AWAIT_HANDSHAKE_3, State.AWAIT_WELCOME})

TRANSITIONS: dict[tuple[State, str], State] = {
    (State.AWAIT_HANDSHAKE_1, "recv_handshake"): State.AWAIT_HANDSHAKE_3,  # responder reads 1, writes 2
    (State.AWAIT_HANDSHAKE_3, "recv_handshake"): State.OPEN,               # responder reads 3, admits, writes Welcome
    (State.AWAIT_HANDSHAKE_2, "recv_handshake"): State.AWAIT_WELCOME,      # initiator reads 2, writes 3
    (State.AWAIT_WELCOME, "recv_welcome"): State.OPEN,
    (State.AWAIT_WELCOME, "send_message"): State.AWAIT_WELCOME,  # early data (Connection.may_send_early)
    (State.OPEN, "recv_message"): State.OPEN,
    (State.OPEN, "send_message"): State.OPEN,
    (State.OPEN, "send_close"): State.CLOSING,
    (State.OPEN, "recv_close"): State.CLOSED,       # we answer Close
    (State.CLOSING, "recv_message"): State.CLOSING,  # in flight before our Close arrived
    (State.CLOSING, "recv_close"): State.CLOSED,
}


def next_state(state: State, event: str) -> State | None:
    """The state after `event`, or None when the table does not allow it."""
    if event in ("error", "eof"):
        return State.CLOSED if state is State.CLOSED else State.ERROR
    return TRANSITIONS.get((state, event))


# Per-document states of a sync session (see sync.py).
class DocState(enum.Enum):
    SYNCING = "syncing"      # wanted by one side from the other's offer: sync messages flow
    DONE = "done"            # both sides idle in a row


DOC_TRANSITIONS: dict[tuple[DocState, str], DocState] = {
    (DocState.SYNCING, "sync"): DocState.SYNCING,
    (DocState.SYNCING, "both_idle"): DocState.DONE,
    (DocState.DONE, "sync"): DocState.SYNCING,  # a later local change reopens it
}
