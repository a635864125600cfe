"""One connection, many documents: Automerge converges through the session; entitlement holds both ways."""
from __future__ import annotations

import automerge.core as am
import pytest

from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.sync import SyncSession
from preau.protocol.wire import SyncMessage

from protocol_pair import SCHOOL_UAI
from sync_driver import Side, completed, exchange, settled, sync_all

OTHER = "school/0010856A/aggregate"
MINE = f"school/{SCHOOL_UAI}/aggregate"
CAMPAIGNS = ["campaign/2026-debut-cp", "campaign/2027-point-cp"]


def _doc(values: dict[str, int]) -> am.Document:
    d = am.Document()
    with d.transaction() as tx:
        for k, v in values.items():
            tx.put(am.ROOT, k, am.ScalarType.Int, v)
    return d


def _as_dict(d: am.Document) -> dict:
    return {k: d.get(am.ROOT, k)[0][1] for k in d.keys(am.ROOT)}


def district_entitlement(peer, doc_id):
    """A school gets campaigns and its own documents, never another school's."""
    return doc_id.startswith("campaign/") or doc_id == MINE


def school_entitlement(peer, doc_id):
    return doc_id == MINE or doc_id.startswith("campaign/")


def _sessions(world):
    i, r = world.open_pair()
    return SyncSession(i, school_entitlement), SyncSession(r, district_entitlement)


def test_multi_document_sync_converges(world):
    school_s, district_s = _sessions(world)
    district_docs = {c: _doc({"exercises": n + 10}) for n, c in enumerate(CAMPAIGNS)}
    district_docs[OTHER] = _doc({"besoin": 3})
    district_docs[MINE] = _doc({"old": 1})  # the district already holds an older copy of this school's document
    school_docs = {MINE: am.Document()}
    school_docs[MINE].merge(district_docs[MINE])
    with school_docs[MINE].transaction() as tx:
        tx.put(am.ROOT, "seuil2", am.ScalarType.Int, 17)
    school, district = Side(school_s, school_docs), Side(district_s, district_docs)
    sync_all(school, district,
             {MINE: b"release:school:v2"},
             {c: b"release:" + c.encode() for c in CAMPAIGNS} | {MINE: b"release:school:v1"})
    for c in CAMPAIGNS:
        assert _as_dict(school.docs[c]) == _as_dict(district.docs[c])
        assert school.docs[c].get_heads() == district.docs[c].get_heads()
    assert _as_dict(district.docs[MINE]) == {"old": 1, "seuil2": 17}
    assert OTHER not in school.docs  # never offered to this school
    assert school_s.peer_offers[CAMPAIGNS[0]] == b"release:campaign/2026-debut-cp"
    assert district_s.peer_offers[MINE] == b"release:school:v2"
    expected = tuple(sorted(CAMPAIGNS + [MINE]))
    assert completed(school).documents == expected == completed(district).documents
    assert settled(school) == set(expected) == settled(district)
    assert school_s.complete and district_s.complete


def test_offering_a_document_the_peer_may_not_have_is_refused(world):
    school_s, district_s = _sessions(world)
    with pytest.raises(LocalProtocolError) as exc:
        district_s.offer({OTHER: None, CAMPAIGNS[0]: None})
    assert exc.value.code == "not_entitled" and "not entitled to document 'school/0010856A/aggregate'" in str(exc.value)
    school_s, _ = school_s, None
    with pytest.raises(RemoteProtocolError) as exc:  # the school only learns the session ended; no Offer left
        school_s.receive_data(district_s.data_to_send())
    assert exc.value.code == "peer_error" and OTHER not in school_s.peer_offers


def test_pushing_an_unwanted_document_is_refused(world):
    school_s, district_s = _sessions(world)
    school_s.conn.send(SyncMessage(OTHER, b"\x42" * 10))  # bypass the session: a hostile school
    with pytest.raises(RemoteProtocolError) as exc:
        district_s.receive_data(school_s.data_to_send())
    assert exc.value.code == "unexpected_document"


def test_wanting_what_was_not_offered_is_refused(world):
    school_s, district_s = _sessions(world)
    district_s.offer({CAMPAIGNS[0]: None})
    school_s.receive_data(district_s.data_to_send())
    with pytest.raises(LocalProtocolError) as exc:
        school_s.want([OTHER])
    assert exc.value.code == "not_offered"


def test_a_hostile_peer_wanting_what_was_not_offered_is_refused(world):
    from preau.protocol.wire import Want
    school_s, district_s = _sessions(world)
    district_s.offer({CAMPAIGNS[0]: None})
    school_s.receive_data(district_s.data_to_send())
    school_s.conn.send(Want((OTHER,)))  # bypassing the session's check
    with pytest.raises(RemoteProtocolError) as exc:
        district_s.receive_data(school_s.data_to_send())
    assert exc.value.code == "not_offered" and OTHER not in district_s.docs


def test_a_settled_document_reopens_on_new_changes(world):
    school_s, district_s = _sessions(world)
    school = Side(school_s, {MINE: _doc({"a": 1})})
    district = Side(district_s, {})
    sync_all(school, district, {MINE: None}, {})
    assert completed(district)
    with school.docs[MINE].transaction() as tx:
        tx.put(am.ROOT, "a", am.ScalarType.Int, 2)
    school.reply(MINE)
    exchange(school, district)
    assert _as_dict(district.docs[MINE]) == {"a": 2}


def test_session_needs_an_open_connection(world):
    world.pin_school()
    with pytest.raises(LocalProtocolError):
        SyncSession(world.connect(), school_entitlement).offer({})



# --- early data: the initiator's offer rides with handshake message 3 ------------------------------------------

def _to_message_2(world, initiator):
    """Run the handshake up to the initiator's reading of message 2 (message 3 is then queued, not sent)."""
    responder = world.responder()
    responder.receive_data(initiator.data_to_send())
    initiator.receive_data(responder.data_to_send())
    return responder


def test_an_initiator_offers_with_handshake_message_3(world):
    from preau.protocol.connection import Established
    from preau.protocol.wire import Offer
    world.pin_school()
    i = world.connect()
    r = _to_message_2(world, i)
    school = SyncSession(i, school_entitlement)
    assert i.may_send_early and school.peer is None
    school.offer({MINE: None})  # before Welcome: message 2 proved the district's key
    flight = i.data_to_send()  # one flight: message 3, then the offer
    for early in (lambda: school.want([]), lambda: school.done()):  # anything else waits for Welcome
        with pytest.raises(LocalProtocolError):
            early()
    events = r.receive_data(flight)
    assert [type(e) for e in events] == [Established, Offer] and events[1].docs[0].doc_id == MINE
    district = SyncSession(r, district_entitlement)
    district.peer = events[0].peer
    district._handle(events[1])
    assert list(district.peer_offers) == [MINE]


def test_an_early_offer_is_checked_for_entitlement_too(world):
    world.pin_school()
    i = world.connect()
    _to_message_2(world, i)
    with pytest.raises(LocalProtocolError, match="not entitled"):
        SyncSession(i, school_entitlement).offer({OTHER: None})


def test_a_joining_school_sends_nothing_before_welcome(world):
    from preau.protocol.wire import Offer
    i = world.join(world.invite())
    _to_message_2(world, i)
    assert not i.may_send_early  # admission is what makes the responder this school's district
    with pytest.raises(LocalProtocolError):
        SyncSession(i, school_entitlement).offer({})
    i = world.join(world.invite())
    _to_message_2(world, i)
    with pytest.raises(LocalProtocolError, match="before the responder's Welcome"):  # nor through the connection
        i.send(Offer(()))


def test_a_refused_initiators_early_offer_is_never_read(world):
    from preau.protocol.errors import RemoteProtocolError as Refused
    i = world.connect()  # the district has not pinned this school
    r = _to_message_2(world, i)
    SyncSession(i, school_entitlement).offer({MINE: None})
    with pytest.raises(Refused) as refused:
        r.receive_data(i.data_to_send())
    assert refused.value.code == "unknown_peer" and r.peer is None
    # Never even decrypted: the admission comes before the frames that follow message 3 are opened.
    assert r._recv.n == 0

# --- the ping-pong always terminates, whatever the interleaving -------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from preau.protocol.sync import DocumentSettled, SyncComplete  # noqa: E402
from preau.protocol.wire import SyncIdle  # noqa: E402
from protocol_pair import World  # noqa: E402

_PAIR = World()


def _scripted_pair():
    i, r = _PAIR.open_pair()
    allow = lambda peer, doc: True  # noqa: E731
    return SyncSession(i, allow), SyncSession(r, allow)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.integers(1, 4), st.data())
def test_ping_pong_terminates_under_any_interleaving(ndocs, data):
    """Each side sends a random number of sync messages per document, answering every one it gets;
    frames are delivered in a random order between the two directions. Both sides must settle every
    document, complete, and owe nothing."""
    a, b = _scripted_pair()
    docs = [f"doc/{n}" for n in range(ndocs)]
    budget = {(side, d): data.draw(st.integers(0, 3)) for side in "ab" for d in docs}
    sessions = {"a": a, "b": b}
    events = {"a": [], "b": []}
    queues = {"a": [], "b": []}  # frames in flight from this side

    def say(side, doc):
        s = sessions[side]
        if budget[(side, doc)]:
            budget[(side, doc)] -= 1
            events[side].extend(s.sync(doc, b"change"))
        else:
            events[side].extend(s.sync(doc, None))
        queues[side].extend(s.conn.frames_to_send())

    owners = {d: data.draw(st.sampled_from(["a", "b", "ab"])) for d in docs}  # who offers it
    a.offer({d: None for d in docs if "a" in owners[d]})
    b.offer({d: None for d in docs if "b" in owners[d]})
    b.receive_data(a.conn.data_to_send())
    a.receive_data(b.conn.data_to_send())
    b.want(list(b.peer_offers))
    a.want(list(a.peer_offers))
    b.receive_data(a.conn.data_to_send())
    a.receive_data(b.conn.data_to_send())
    for d in docs:
        starters = data.draw(st.sampled_from(["a", "b", "ab"]))
        for side in starters:
            say(side, d)
    for _ in range(1000):
        if not queues["a"] and not queues["b"]:
            break
        src = data.draw(st.sampled_from([s for s in "ab" if queues[s]]))
        dst = "b" if src == "a" else "a"
        events[dst].extend(sessions[dst].receive_data(queues[src].pop(0)))
        for d in sorted(sessions[dst].awaiting_reply):
            say(dst, d)
    else:
        raise AssertionError("the ping-pong did not terminate")
    for side in "ab":
        events[side].extend(sessions[side].done())
        queues[side] += sessions[side].conn.frames_to_send()
    events["b"].extend(b.receive_data(b"".join(queues["a"])))
    events["a"].extend(a.receive_data(b"".join(queues["b"])))
    for side in "ab":
        s = sessions[side]
        assert not s.awaiting_reply
        assert {e.doc_id for e in events[side] if isinstance(e, DocumentSettled)} == set(docs)
        assert [e.documents for e in events[side] if isinstance(e, SyncComplete)] == [tuple(docs)]
    assert all(v == 0 for v in budget.values())  # every change a side wanted to send was sent


def test_crossing_idles_settle_without_more_messages(world):
    school_s, district_s = _sessions(world)
    district_s.offer({CAMPAIGNS[0]: None})
    school_s.receive_data(district_s.data_to_send())
    school_s.want([CAMPAIGNS[0]])
    district_s.receive_data(school_s.data_to_send())
    school_s.sync(CAMPAIGNS[0], None)
    district_s.sync(CAMPAIGNS[0], None)
    ev_d = district_s.receive_data(school_s.data_to_send())
    ev_s = school_s.receive_data(district_s.data_to_send())
    assert ev_d == [SyncIdle(CAMPAIGNS[0]), DocumentSettled(CAMPAIGNS[0])] and ev_s == ev_d
    assert not school_s.awaiting_reply and not district_s.awaiting_reply
    assert school_s.data_to_send() == district_s.data_to_send() == b""
