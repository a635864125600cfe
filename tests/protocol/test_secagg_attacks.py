"""A malicious district, one move at a time: each is refused by honest schools.

The district here is the real aggregator driven by hand, with messages forged
from what it legitimately holds, as a district that runs modified code could.
"""
from __future__ import annotations

import pytest

from preau.protocol.identity import Identity
from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.secagg import DistrictAggregator, Member, PoolDefinition, SchoolClient, decode, encode
from preau.protocol.secagg.messages import (
    ConsistencyRequest, KeysBroadcast, MaskedInput, MemberSignature, RoutedShares, UnmaskRequest,
    UnmaskShares,
)

from secagg_pool import Pool, declared, run, seed, uai


class Rounds:
    """A pool of 6 (t = 5) driven round by round so a test can tamper between them."""

    def __init__(self, tag: str = "attack", **kw):
        self.pool = Pool(6, cohorts=[3, 4, 5, 6, 7, 3], tag=tag, **kw)
        self.clients = self.pool.clients()
        self.server = DistrictAggregator(self.pool.definition)
        self.inbox = {m: c.start() for m, c in self.clients.items()}

    def step(self, members=None) -> dict[int, bytes]:
        """Deliver the inbox to the district, close the round; returns what the district would send."""
        for m, data in self.inbox.items():
            if members is None or m in members:
                self.server.receive(m, data)
        return self.server.advance()

    def deliver(self, out: dict[int, bytes]) -> None:
        self.inbox = {}
        for m, data in out.items():
            reply = self.clients[m].receive(data)
            if reply is not None:
                if reply.sent_input is not None:
                    self.pool.spent[m - 1][reply.sent_input.campaign_id] = reply.sent_input
                self.inbox[m] = reply.data

    def to(self, state: str) -> dict[int, bytes]:
        """Run honestly until the district moves into `state`; returns what it sends then (not yet delivered)."""
        while True:
            out = self.step()
            if self.server.state == state:
                return out
            self.deliver(out)


def _refused(client: SchoolClient, data: bytes, code: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        client.receive(data)
    assert err.value.code == code, err.value
    assert client.state == "failed"
    with pytest.raises(LocalProtocolError):  # and it takes no further part
        client.receive(data)


# --- withholding messages to isolate a member --------------------------------------

def test_withholding_adverts_to_isolate_a_member_is_refused():
    r = Rounds()
    out = r.to("shares")
    adverts = decode(out[1]).adverts
    isolated = encode(KeysBroadcast(r.pool.definition.pool_id, adverts[:4]))  # the victim and 3 others: t - 1
    _refused(r.clients[1], isolated, "too_few_members")


def test_withholding_shares_from_a_member_is_refused():
    r = Rounds()
    r.deliver(r.to("shares"))
    out = r.to("inputs")
    routed = decode(out[1])
    _refused(r.clients[1], encode(RoutedShares(routed.pool_id, 1, routed.shares[:3])), "too_few_members")


def test_a_surviving_set_below_t_is_refused_and_one_without_me_too():
    r = Rounds()
    out = r.to("signatures")
    pid = r.pool.definition.pool_id
    _refused(r.clients[1], encode(ConsistencyRequest(pid, (1, 2, 3, 4))), "too_few_members")
    _refused(r.clients[2], encode(ConsistencyRequest(pid, (1, 3, 4, 5, 6))), "excluded")
    assert r.clients[3].receive(out[3]) is not None  # the honest request is answered


def test_unmasking_with_too_few_or_forged_confirmations_is_refused():
    r = Rounds()
    out = r.to("unmask")
    request = decode(out[1])
    pid = r.pool.definition.pool_id
    few = UnmaskRequest(pid, request.survivors, request.dropped, request.signatures[:4])
    _refused(r.clients[1], encode(few), "too_few_members")
    forged = UnmaskRequest(pid, request.survivors, request.dropped,
                           request.signatures[:4] + (MemberSignature(6, request.signatures[0].signature),))
    _refused(r.clients[2], encode(forged), "bad_consistency")


# --- replaying rounds ----------------------------------------------------------------

def test_a_replayed_identical_message_gets_the_identical_answer():
    r = Rounds()
    out = r.to("shares")
    first = r.clients[1].receive(out[1])
    assert r.clients[1].receive(out[1]) == first  # a lost reply is sent again, nothing new


def test_a_different_message_for_an_answered_round_is_refused():
    r = Rounds()
    out = r.to("shares")
    r.deliver(out)
    other = decode(out[1])
    _refused(r.clients[1], encode(KeysBroadcast(other.pool_id, other.adverts[:5])), "replayed_round")


def test_a_round_out_of_order_is_refused():
    r = Rounds()
    r.to("shares")
    _refused(r.clients[1], encode(ConsistencyRequest(r.pool.definition.pool_id, (1, 2, 3, 4, 5, 6))), "out_of_order")


def test_adverts_from_another_pool_do_not_verify():
    """Same schools, same campaign, a second pool: round-0 signatures are bound to the pool's digest."""
    r1, r2 = Rounds(tag="first"), Rounds(tag="second")
    stolen = decode(r1.to("shares")[1]).adverts
    out = r2.to("shares")
    mine = decode(out[1]).adverts
    mixed = KeysBroadcast(r2.pool.definition.pool_id, (mine[0],) + tuple(
        type(a)(r2.pool.definition.pool_id, a.sender, a.c_pk, a.s_pk, a.signature) for a in stolen[1:]))
    _refused(r2.clients[1], encode(mixed), "bad_signature")


def test_a_message_for_another_pool_is_refused():
    r1, r2 = Rounds(tag="first"), Rounds(tag="second")
    _refused(r2.clients[1], r1.to("shares")[1], "wrong_pool")


def test_after_answering_the_unmask_round_a_second_request_is_refused():
    r = Rounds()
    out = r.to("unmask")
    request = decode(out[1])
    r.clients[1].receive(out[1])
    changed = UnmaskRequest(request.pool_id, request.survivors, request.dropped, request.signatures[:5])
    _refused(r.clients[1], encode(changed), "replayed_round")


# --- asking for both shares of one member -------------------------------------------

def _drop_member_6_after_shares() -> tuple[Rounds, dict[int, bytes]]:
    r = Rounds()
    r.deliver(r.to("shares"))
    r.deliver(r.to("inputs"))
    r.inbox.pop(6)  # member 6 never sends its masked input: it is in U2, not in U3
    out = r.to("signatures")
    r.deliver(out)
    return r, r.to("unmask")


def test_asking_for_both_shares_of_one_member_is_refused():
    r, out = _drop_member_6_after_shares()
    request = decode(out[1])
    assert request.survivors == (1, 2, 3, 4, 5) and request.dropped == (6,)
    assert r.clients[2].receive(out[2]) is not None  # the honest request: b of 1-5, the key of 6
    greedy = UnmaskRequest(request.pool_id, request.survivors, (3, 6), request.signatures)
    _refused(r.clients[1], encode(greedy), "both_shares")


def test_moving_a_survivor_to_dropped_after_signing_is_refused():
    r, out = _drop_member_6_after_shares()
    request = decode(out[1])
    moved = UnmaskRequest(request.pool_id, (1, 2, 4, 5), (3, 6), request.signatures)
    _refused(r.clients[1], encode(moved), "survivors_changed")


def test_no_member_ever_reveals_both_shares_of_anyone():
    pool = Pool(12, tag="view")
    server, _clients, transcript = run(pool, {"inputs": {4}, "signatures": {9}})
    assert server.state == "complete"
    for kind, _m, data in transcript:
        msg = decode(data)
        if kind == "up" and isinstance(msg, UnmaskShares):
            b = {s.member for s in msg.self_mask_shares}
            k = {s.member for s in msg.key_shares}
            assert b == set(server.result.survivors) and k == {4}


def test_an_unmask_message_with_both_shares_does_not_even_decode():
    share = bytes(33)
    from preau.protocol.secagg.messages import RevealedShare
    with pytest.raises(LocalProtocolError):
        UnmaskShares(bytes(16), 1, (RevealedShare(2, share),), (RevealedShare(2, share),))


# --- adding members the district controls -------------------------------------------

def test_a_pool_padded_with_tiny_fake_members_is_refused():
    """A real school of 3 pupils with fake schools declaring 1 pupil each: some t of them hold under 10."""
    real = Pool(4, cohorts=[3, 6, 7, 8], tag="padding")
    fakes = [Identity(seed("fake", i)) for i in range(3)]
    members = (real.members[0],) + tuple(declared(f, uai(100 + i), f"Fausse école {i}", 1) for i, f in enumerate(fakes))
    padded = PoolDefinition.create(real.district, campaign_id="2026-debut-cp", pool_id=seed("padded")[:16], threshold=3,
                                   vector_length=len(real.vectors[0]), members=members)
    with pytest.raises(LocalProtocolError) as err:
        real.client(0, definition=padded)
    assert err.value.code == "cohort_too_small"


def test_a_pool_with_schools_that_publish_alone_is_refused():
    """Two schools of 19 pupils publish their counts alone; pooled with one of 6, the pool's sum minus their two
    releases is that school's exact counts (done on the demo with `preau pool create`: every cell matched).
    Every member refuses a pool in which a school declared at least the floor, its own cohort included."""
    pool = Pool(3, cohorts=[19, 19, 6], tag="subtract")
    for i in range(3):
        with pytest.raises(LocalProtocolError) as err:
            pool.client(i)
        assert err.value.code == "member_publishes_alone", err.value
        assert "publishes its counts alone" in err.value.message
    raised = Pool(3, cohorts=[12, 9, 9], tag="raised")  # a campaign whose floor is 15: 12 is still withheld alone
    assert raised.client(0, min_cohort=15).index == 1
    with pytest.raises(LocalProtocolError) as err:
        raised.client(1)  # under the national floor of 10, 12 publishes alone
    assert err.value.code == "member_publishes_alone"


# --- lying about a real school's cohort ----------------------------------------------

def _with_cohorts(pool: Pool, members, tag: str) -> PoolDefinition:
    return PoolDefinition.create(pool.district, campaign_id=pool.campaign, pool_id=seed(tag)[:16], threshold=3,
                                 vector_length=len(pool.vectors[0]), members=tuple(members))


def test_a_district_inflating_a_real_schools_cohort_is_refused():
    """Three real schools of 2, 3 and 4 pupils: any 3 of them hold 9, under the floor. The district writes 5 for
    the school of 2 so the floor seems met; that school never signed 5, and every member refuses the pool."""
    pool = Pool(4, cohorts=[2, 3, 4, 6], tag="inflate")
    honest = _with_cohorts(pool, pool.members, "honest")
    with pytest.raises(LocalProtocolError) as err:
        pool.client(1, definition=honest)
    assert err.value.code == "cohort_too_small"  # the truth is refused by the floor...
    first = pool.members[0]
    lie = Member(first.signing_key, first.uai, first.name, 5, first.declared_at, first.declaration)
    inflated = _with_cohorts(pool, (lie, *pool.members[1:]), "inflated")
    assert inflated.smallest_surviving_cohort() >= 10  # ...and the lie would pass it
    for i in range(4):
        with pytest.raises(LocalProtocolError) as err:
            pool.client(i, definition=inflated)
        assert err.value.code == "bad_cohort_declaration", i


def test_a_cohort_without_its_schools_declaration_or_from_another_campaign_is_refused():
    pool = Pool(4, cohorts=[3, 4, 5, 6], tag="undeclared")
    first = pool.members[0]
    bare = Member(first.signing_key, first.uai, first.name, first.cohort)  # the district typed it in
    with pytest.raises(LocalProtocolError) as err:
        pool.client(1, definition=_with_cohorts(pool, (bare, *pool.members[1:]), "bare"))
    assert err.value.code == "bad_cohort_declaration"
    elsewhere = declared(pool.schools[0], first.uai, first.name, first.cohort, campaign="2026-fin-cp")
    with pytest.raises(LocalProtocolError) as err:
        pool.client(1, definition=_with_cohorts(pool, (elsewhere, *pool.members[1:]), "elsewhere"))
    assert err.value.code == "bad_cohort_declaration"
    other_uai = declared(pool.schools[0], uai(77), first.name, first.cohort)
    moved = Member(first.signing_key, first.uai, first.name, first.cohort, other_uai.declared_at, other_uai.declaration)
    with pytest.raises(LocalProtocolError) as err:
        pool.client(1, definition=_with_cohorts(pool, (moved, *pool.members[1:]), "moved"))
    assert err.value.code == "bad_cohort_declaration"
    assert pool.client(1, definition=_with_cohorts(pool, pool.members, "good")).state == "advertised"


# --- a second pool over the same campaign --------------------------------------------

def test_a_second_pool_for_the_same_campaign_is_refused():
    first = Pool(4, cohorts=[3, 4, 5, 6], tag="campaign")
    server, _clients, _ = run(first)
    assert server.state == "complete"
    assert all("2026-debut-cp" in spent for spent in first.spent)
    second = PoolDefinition.create(first.district, campaign_id="2026-debut-cp", pool_id=seed("second")[:16], threshold=3,
                                   vector_length=len(first.vectors[0]), members=first.members)
    with pytest.raises(LocalProtocolError) as err:
        first.client(0, definition=second)
    assert err.value.code == "already_sent"
    again = tuple(declared(s, m.uai, m.name, m.cohort, "2026-fin-cp") for s, m in zip(first.schools, first.members))
    other_campaign = PoolDefinition.create(first.district, campaign_id="2026-fin-cp", pool_id=seed("third")[:16],
                                           threshold=3, vector_length=len(first.vectors[0]), members=again)
    assert first.client(0, definition=other_campaign).state == "advertised"


def test_a_second_masked_input_in_the_same_pool_is_refused():
    """The school lost its state but kept its record: fresh clients (new seeds) may not mask again."""
    pool = Pool(4, cohorts=[3, 4, 5, 6], tag="resend")
    run(pool, {"signatures": {1, 2, 3, 4}})  # every school sent its masked input, then the pool stalled
    assert all("2026-debut-cp" in spent for spent in pool.spent)
    with pytest.raises(LocalProtocolError) as err:
        run(pool)  # same pool, same vectors, new seeds: a second, different masked input
    assert err.value.code == "already_sent"


def test_resuming_from_the_transcript_gives_the_same_masked_input():
    r = Rounds(tag="resume")
    keys = r.to("shares")
    r.deliver(keys)
    routed = r.to("inputs")
    r.deliver(routed)
    sent = r.inbox[1]
    resumed = SchoolClient(r.pool.schools[0], r.pool.definition, district_key=r.pool.district.signing_key,
                           vector=r.pool.vectors[0], seed=r.pool.seeds[0], spent=r.pool.spent[0])
    resumed.receive(keys[1])
    assert resumed.receive(routed[1]).data == sent
    assert isinstance(decode(sent), MaskedInput)


def test_a_caller_asking_for_a_lower_minimum_still_gets_the_floor():
    """The pool check is where the floor lives: a node passing min_cohort=3 (a campaign from elsewhere,
    a bug) still refuses a pool in which some t members hold fewer than MIN_COHORT pupils."""
    from preau.protocol.secagg import MIN_COHORT, check_pool

    pool = Pool(4, cohorts=[3, 4, 5, 6], tag="floor")
    members = tuple(declared(school, m.uai, m.name, c) for school, m, c in zip(pool.schools, pool.members, [1, 1, 1, 6]))
    weak = PoolDefinition.create(pool.district, campaign_id="2026-debut-cp", pool_id=seed("weak")[:16], threshold=3,
                                 vector_length=len(pool.vectors[0]), members=members)
    assert weak.smallest_surviving_cohort() < MIN_COHORT
    with pytest.raises(RemoteProtocolError) as err:
        check_pool(weak, district_key=pool.district.signing_key, me=pool.schools[0].signing_key, min_cohort=3)
    assert err.value.code == "cohort_too_small"
