"""Replicas and relays exchanging sync messages over a lossy network converge, and so do the statistics."""
import random

from automerge.core import SyncState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preau.crdt.docio import generate_sync_message, load_document, merge_document, receive_sync_message
from preau.crdt.errors import SyncMessageError
from preau.crdt.signing import verify_release
from preau.crdt.statistics import CampaignStatistics

from crdt_fixtures import NOW, School, make_campaign, outcomes_for, sync_pair

CAMPAIGN = make_campaign()


def _school_versions(n: int, releases: int = 3):
    """Saved bytes of a school's document after each release, with the signatures."""
    s = School(n, CAMPAIGN)
    pupils = [f"s{n}p{i}" for i in range(12 + 4 * n)]
    versions = []
    for k in range(releases):
        s.publish(outcomes_for(pupils, CAMPAIGN, random.Random(n * 10 + k)), now=NOW + k)
        versions.append(s.doc.save())
    return s, versions


SCHOOLS = [_school_versions(1), _school_versions(2)]
# Nodes 0 and 1 are the two schools' writers (one document each); 2 and 3 relays; 4 the district.
LINKS = [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3), (2, 4), (3, 4)]


def _stats(docs_by_school) -> dict:
    stats = CampaignStatistics(CAMPAIGN.id)
    for (school, _), doc in zip(SCHOOLS, docs_by_school):
        for signed in school.signed:
            if set(signed.heads) <= {c.hash for c in doc.get_changes([])}:
                stats.add(verify_release(doc, signed, school.owner, stats.release_of(school.owner)))
    return stats.to_dict()


class Network:
    def __init__(self):
        # docs[node][school]: nodes 0/1 hold only their own school's document
        self.docs = {node: {} for node in range(5)}
        self.published = [0, 0]
        for k in (0, 1):
            self.docs[k][k] = load_document(SCHOOLS[k][1][0])
        for node in (2, 3, 4):
            for k in (0, 1):
                self.docs[node][k] = load_document(b"")
        self.states = {}
        self.queue = []  # (src, dst, school, bytes)

    def state(self, src, dst, school):
        return self.states.setdefault((src, dst, school), SyncState())

    def reset_link(self, a, b):
        for key in list(self.states):
            if {key[0], key[1]} == {a, b}:
                del self.states[key]
        self.queue = [m for m in self.queue if {m[0], m[1]} != {a, b}]

    def send(self, link, school, reverse):
        a, b = LINKS[link][::-1] if reverse else LINKS[link]
        if school not in self.docs[a] or school not in self.docs[b]:
            return
        msg = generate_sync_message(self.docs[a][school], self.state(a, b, school))
        if msg is not None:
            self.queue.append((a, b, school, msg))

    def deliver(self, i):
        if not self.queue:
            return
        a, b, school, msg = self.queue.pop(i % len(self.queue))
        try:
            # a writer never takes changes into its own document
            receive_sync_message(self.docs[b][school], self.state(b, a, school), msg, accept_changes=b not in (0, 1))
        except SyncMessageError:
            self.reset_link(a, b)  # what a node does on a bad message: drop the connection, start fresh

    def restart(self, node):
        for school, doc in list(self.docs[node].items()):
            self.docs[node][school] = load_document(doc.save())
        for other in range(5):
            self.reset_link(node, other)

    def publish(self, school):
        if self.published[school] + 1 < len(SCHOOLS[school][1]):
            self.published[school] += 1
            self.docs[school][school] = load_document(SCHOOLS[school][1][self.published[school]])

    def settle(self):
        for a, b in LINKS:
            self.reset_link(a, b)
        for _ in range(3):
            for a, b in LINKS:
                for school in (0, 1):
                    if school in self.docs[a] and school in self.docs[b]:
                        sync_pair(self.docs[a][school], self.docs[b][school], accept_changes_b=b not in (0, 1))


action = st.one_of(
    st.tuples(st.just("send"), st.integers(0, len(LINKS) - 1), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("deliver"), st.integers(0, 50)),
    st.tuples(st.just("drop"), st.integers(0, 50)),
    st.tuples(st.just("dup"), st.integers(0, 50)),
    st.tuples(st.just("restart"), st.integers(0, 4)),
    st.tuples(st.just("publish"), st.integers(0, 1)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=5, max_size=80))
def test_lossy_reordering_network_with_restarts_converges(actions):
    net = Network()
    for act in actions:
        kind = act[0]
        if kind == "send":
            net.send(act[1], act[2], act[3])
        elif kind == "deliver":
            net.deliver(act[1])
        elif kind == "drop" and net.queue:
            net.queue.pop(act[1] % len(net.queue))
        elif kind == "dup" and net.queue:
            net.queue.append(net.queue[act[1] % len(net.queue)])
        elif kind == "restart":
            net.restart(act[1])
        elif kind == "publish":
            net.publish(act[1])
    for school in (0, 1):
        while net.published[school] + 1 < len(SCHOOLS[school][1]):
            net.publish(school)
    net.settle()
    for school in (0, 1):
        want = sorted(net.docs[school][school].get_heads())
        for node in (2, 3, 4):
            assert sorted(net.docs[node][school].get_heads()) == want
    expected = _stats([net.docs[0][0], net.docs[1][1]])
    for node in (2, 3, 4):
        assert _stats([net.docs[node][0], net.docs[node][1]]) == expected


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(6)), st.permutations(range(6)))
def test_merging_in_any_order_gives_identical_heads_and_statistics(order_a, order_b):
    pieces = [(k, v) for k in (0, 1) for v in SCHOOLS[k][1]]

    def merged(order):
        docs = [load_document(b""), load_document(b"")]
        for i in order:
            k, saved = pieces[i]
            merge_document(docs[k], saved)
        return docs

    a, b = merged(order_a), merged(order_b)
    assert [sorted(d.get_heads()) for d in a] == [sorted(d.get_heads()) for d in b]
    assert _stats(a) == _stats(b)
    assert _stats(a)["schools"] and len(_stats(a)["schools"]) == 2
