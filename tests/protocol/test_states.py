from __future__ import annotations

from preau.protocol.states import DOC_TRANSITIONS, HANDSHAKE_STATES, TRANSITIONS, DocState, State, next_state


def test_errors_and_hang_ups_end_every_state():
    for st in State:
        assert next_state(st, "error") is (State.CLOSED if st is State.CLOSED else State.ERROR)
        assert next_state(st, "eof") is (State.CLOSED if st is State.CLOSED else State.ERROR)


def test_nothing_leaves_closed_or_error_except_by_the_table():
    assert not [k for k in TRANSITIONS if k[0] in (State.CLOSED, State.ERROR)]


def test_both_roles_reach_open_through_the_handshake_only():
    responder = [State.AWAIT_HANDSHAKE_1, State.AWAIT_HANDSHAKE_3, State.OPEN]
    initiator = [State.AWAIT_HANDSHAKE_2, State.AWAIT_WELCOME, State.OPEN]
    for path, event in ((responder, "recv_handshake"), (initiator, None)):
        st = path[0]
        for nxt in path[1:]:
            ev = event or ("recv_welcome" if st is State.AWAIT_WELCOME else "recv_handshake")
            st = next_state(st, ev)
            assert st is nxt
    for hs in HANDSHAKE_STATES:
        assert next_state(hs, "recv_message") is None
        # Nothing is sent during the handshake, except the initiator's early data once message 2 proved the
        # responder (Connection.may_send_early): it rides with message 3, and the state waits for Welcome.
        assert next_state(hs, "send_message") is (State.AWAIT_WELCOME if hs is State.AWAIT_WELCOME else None)


def test_close_sequence():
    assert next_state(State.OPEN, "send_close") is State.CLOSING
    assert next_state(State.CLOSING, "recv_close") is State.CLOSED
    assert next_state(State.CLOSING, "send_message") is None
    assert next_state(State.OPEN, "recv_close") is State.CLOSED


def test_document_states():
    assert DOC_TRANSITIONS[(DocState.SYNCING, "both_idle")] is DocState.DONE
    assert DOC_TRANSITIONS[(DocState.DONE, "sync")] is DocState.SYNCING
