"""Secure aggregation with honest parties: exact sums under dropouts, aborts below t, masked inputs look uniform."""
from __future__ import annotations

import random

import pytest

from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.secagg import DistrictAggregator, Member, PoolDefinition, SchoolClient, check_pool, decode, encode, masks
from preau.protocol.secagg.messages import MaskedInput, PoolAborted, UnmaskShares

from secagg_pool import ROUNDS, Pool, declared, run, seed, uai


def _patterns(n: int, budget: int, count: int, rng: random.Random):
    """Dropout patterns: all of the budget at each single round, then random spreads over rounds."""
    for name in ROUNDS:
        yield {name: set(rng.sample(range(1, n + 1), budget))}
    while count > 0:
        count -= 1
        left, spare, drops = list(range(1, n + 1)), budget, {}
        for name in ROUNDS:
            k = rng.randint(0, spare)
            drops[name] = set(rng.sample(left, k))
            left = [m for m in left if m not in drops[name]]
            spare -= k
        yield drops


def test_pool_of_12_gives_exactly_the_survivors_sum_under_dropouts():
    rng = random.Random(12)
    pool = Pool(12)  # t = 9: up to 3 may drop
    assert pool.t == 9
    seen_sizes = set()
    for k, drops in enumerate(_patterns(12, pool.n - pool.t, 8, rng)):
        pool = Pool(12, tag=f"pattern-{k}")
        server, clients, _ = run(pool, drops)
        assert server.state == "complete", (drops, server.reason)
        gone_before_input = drops.get("keys", set()) | drops.get("shares", set()) | drops.get("inputs", set())
        survivors = tuple(m for m in range(1, 13) if m not in gone_before_input)
        assert server.result.survivors == survivors
        assert server.result.total == pool.expected(survivors)
        assert server.result.declared_cohort == sum(pool.cohorts[u - 1] for u in survivors)
        seen_sizes.add(len(survivors))
    assert {9, 12} < seen_sizes


def test_no_dropout_sums_everyone():
    pool = Pool(12, tag="all")
    server, clients, _ = run(pool)
    assert server.result.total == pool.expected(range(1, 13))
    assert all(c.state == "complete" and c.survivors == tuple(range(1, 13)) for c in clients.values())


@pytest.mark.parametrize("round_name", ROUNDS)
def test_fewer_than_t_aborts_and_nothing_is_unmasked(round_name):
    pool = Pool(12, tag="abort-" + round_name)
    server, clients, transcript = run(pool, {round_name: {1, 2, 3, 4}})
    assert server.state == "aborted" and server.result is None
    assert "needs 9" in server.reason
    told = [m for kind, m, data in transcript if kind == "down" and isinstance(decode(data), PoolAborted)]
    assert told and all(clients[m].state == "failed" for m in told if m > 4)
    # ... each told why as a code and values, which its node says in its people's language
    assert server.reason_code == "too_few_answered" and server.reason_params["threshold"] == 9
    said = {k: str(v) for k, v in server.reason_params.items()}
    assert all(clients[m].aborted == ("too_few_answered", said) for m in told if m > 4)
    revealers = {m for kind, m, d in transcript if kind == "up" and isinstance(decode(d), UnmaskShares)}
    assert len(revealers) < pool.t  # too few shares of any mask to rebuild it


def test_shares_that_do_not_agree_abort_and_the_schools_are_told_why_by_code():
    """A member reveals a wrong share of another's self mask: the sum cannot be opened, the district aborts, and
    the schools are told why as a code (their nodes say it in their own words), not in the district's English."""
    import dataclasses

    pool = Pool(4, 3, tag="shares-disagree")
    clients = pool.clients()

    class Lying:
        def __init__(self, honest):
            self.honest = honest

        def start(self):
            return self.honest.start()

        def receive(self, data):
            reply = self.honest.receive(data)
            msg = decode(reply.data) if reply is not None else None
            if isinstance(msg, UnmaskShares):  # its share of member 2's mask replaced by its share of member 3's
                shares = list(msg.self_mask_shares)
                shares[1] = dataclasses.replace(shares[1], share=shares[2].share)
                reply = dataclasses.replace(reply, data=encode(dataclasses.replace(msg, self_mask_shares=tuple(shares))))
            return reply

    clients[1] = Lying(clients[1])
    server, clients, transcript = run(pool, clients=clients)
    assert server.state == "aborted" and server.result is None and server.reason_code == "bad_self_mask_shares"
    told = {m: decode(d) for kind, m, d in transcript if kind == "down" and isinstance(decode(d), PoolAborted)}
    assert set(told) == {1, 2, 3, 4} and all(msg.code == "bad_self_mask_shares" for msg in told.values())
    assert all(clients[m].aborted == ("bad_self_mask_shares", {}) for m in (2, 3, 4))


def _chi_square(words: list[int], buckets: int = 16, shift: int = 28) -> float:
    counts = [0] * buckets
    for w in words:
        counts[(w >> shift) % buckets] += 1
    expected = len(words) / buckets
    return sum((c - expected) ** 2 / expected for c in counts)


CHI2_15_P001 = 37.70  # chi-square critical value, 15 degrees of freedom, p = 0.001


def _masked_words(runs: int, length: int = 128) -> list[int]:
    """Member 1's masked input, always over the same planted vector, across runs with fresh seeds."""
    pool = Pool(3, 3, length=length, cohorts=[4, 3, 3], tag="uniform")
    pool.vectors[0] = [7] * length
    words = []
    for _ in range(runs):
        pool.spent = [dict() for _ in range(3)]
        server, _clients, transcript = run(pool, {"signatures": {1, 2, 3}})
        words += masks.unpack(next(decode(d).masked for kind, m, d in transcript
                                   if kind == "up" and m == 1 and isinstance(decode(d), MaskedInput)))
    return words


def test_the_districts_view_of_a_masked_input_is_uniform():
    """Over 40 runs with the same input, every nibble position of the masked words passes a chi-square test."""
    words = _masked_words(40)
    assert len(words) == 40 * 128 and len(set(words)) > 0.99 * len(words)
    for shift in range(0, 32, 4):
        assert _chi_square(words, shift=shift) < CHI2_15_P001, shift


def test_the_uniformity_test_sees_an_unmasked_input(monkeypatch):
    """The same statistic on inputs with masks switched off fails: the test above can fail."""
    monkeypatch.setattr(masks, "self_mask", lambda b, digest, length: [0] * length)
    monkeypatch.setattr(masks, "pairwise_mask", lambda s, p, digest, length: [0] * length)
    words = _masked_words(2)
    assert max(_chi_square(words, shift=s) for s in range(0, 32, 4)) > CHI2_15_P001


# --- pool checks --------------------------------------------------------------

def _define(pool: Pool, *, threshold=None, cohorts=None, members=None, district=None, campaign="2026-debut-cp", pool_id=None):
    members = members if members is not None else tuple(
        declared(school, m.uai, m.name, c, campaign) for school, m, c in zip(pool.schools, pool.members, cohorts or pool.cohorts))
    return PoolDefinition.create(district or pool.district, campaign_id=campaign, pool_id=pool_id or pool.definition.pool_id,
                                 threshold=threshold or pool.t, vector_length=len(pool.vectors[0]), members=members)


def _refusal(pool: Pool, definition, **kw) -> str:
    with pytest.raises(RemoteProtocolError) as err:
        check_pool(definition, district_key=pool.district.signing_key, me=pool.schools[0].signing_key, **kw)
    return err.value.code


def test_pool_checks_accept_a_good_pool_and_return_the_index():
    pool = Pool(5, cohorts=[3, 4, 5, 6, 7])
    assert check_pool(pool.definition, district_key=pool.district.signing_key, me=pool.schools[2].signing_key, my_cohort=5) == 3


def test_pool_checks_refuse_each_bad_pool():
    pool = Pool(6, cohorts=[3, 4, 5, 6, 7, 3])
    assert pool.t == 5
    assert _refusal(pool, _define(pool, threshold=4)) == "threshold_too_low"  # 4 is not more than 2/3 of 6
    small = Pool(2, 2, cohorts=[6, 6])
    assert _refusal(small, small.definition) == "pool_too_small"
    assert _refusal(pool, _define(pool, cohorts=[3, 1, 1, 1, 7, 3])) == "cohort_too_small"
    assert _refusal(pool, pool.definition, my_cohort=4) == "wrong_cohort"
    other = Pool(6, tag="other")
    assert _refusal(pool, other.definition) == "bad_pool_signature"  # signed by another district
    forged = PoolDefinition(*[getattr(pool.definition, f) for f in ("campaign_id", "pool_id")], 6,
                            pool.definition.vector_length, pool.district.signing_key, pool.definition.members,
                            pool.definition.signature)
    assert _refusal(pool, forged) == "bad_pool_signature"  # threshold changed after signing
    without_me = _define(pool, members=pool.definition.members[1:] + (declared(other.schools[0], uai(99), "Fausse", 9),))
    assert _refusal(pool, without_me) == "not_a_member"


def test_pool_countersignature_is_required_when_the_district_has_a_parent():
    from preau.protocol.identity import Identity
    pool = Pool(4, cohorts=[3, 4, 5, 6])
    academie = Identity(seed("academie"))
    assert _refusal(pool, pool.definition, parent_key=academie.signing_key) == "bad_pool_countersignature"
    signed = pool.definition.countersigned(academie)
    assert check_pool(signed, district_key=pool.district.signing_key, me=pool.schools[0].signing_key,
                      parent_key=academie.signing_key) == 1
    assert decode(encode(signed)) == signed


def test_every_t_subset_check_is_the_t_smallest_cohorts():
    pool = Pool(6, cohorts=[1, 2, 3, 9, 9, 9])
    assert pool.definition.smallest_surviving_cohort() == 1 + 2 + 3 + 9 + 9
    import itertools
    assert min(sum(c) for c in itertools.combinations(pool.cohorts, pool.t)) == 24


def test_a_client_refuses_a_bad_vector_and_a_bad_pool():
    pool = Pool(4, cohorts=[3, 4, 5, 6])
    with pytest.raises(LocalProtocolError) as err:
        pool.client(0, definition=_define(pool, cohorts=[1, 1, 1, 6]))
    assert err.value.code == "cohort_too_small"
    pool.vectors[0] = pool.vectors[0][:-1]
    with pytest.raises(LocalProtocolError) as err:
        pool.client(0)
    assert err.value.code == "invalid_vector"


def test_server_refuses_equivocation_and_wrong_sender_and_ignores_late_answers():
    pool = Pool(4, cohorts=[3, 4, 5, 6])
    clients = pool.clients()
    server = DistrictAggregator(pool.definition)
    assert server.receive(1, clients[1].start())
    assert not server.receive(1, clients[1].start())  # the same again: ignored
    with pytest.raises(RemoteProtocolError) as err:
        server.receive(2, clients[1].start())
    assert err.value.code == "wrong_sender"
    other_advert = SchoolClient(pool.schools[0], pool.definition, district_key=pool.district.signing_key,
                                vector=pool.vectors[0], seed=seed("another seed")).start()  # a second, different advert
    with pytest.raises(RemoteProtocolError) as err:
        server.receive(1, other_advert)
    assert err.value.code == "equivocation"
    for m in (2, 3, 4):
        server.receive(m, clients[m].start())
    assert server.waiting_for == frozenset()
    out = server.advance()
    assert set(out) == {1, 2, 3, 4}
    assert not server.receive(1, clients[1].start())  # late: keys round closed


def test_pool_mail_travels_in_a_sync_session(world):
    """A sync session carries secure-aggregation messages both ways, as PoolMail events."""
    from preau.protocol.sync import SyncSession
    from preau.protocol.wire import PoolMail
    from protocol_pair import pump
    pool = Pool(3, 3, cohorts=[4, 3, 3], tag="mail")
    advert = pool.client(0).start()
    i, r = world.open_pair()
    school, district = SyncSession(i, lambda p, d: False), SyncSession(r, lambda p, d: False)
    school.pool_mail(advert)
    district.pool_mail(encode(pool.definition))
    got_school, got_district = pump(i, r)
    assert [ev.data for ev in got_district if isinstance(ev, PoolMail)] == [advert]
    assert [decode(ev.data) for ev in got_school if isinstance(ev, PoolMail)] == [pool.definition]
