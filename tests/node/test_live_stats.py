"""Statistics held in memory and kept up to date from the federation store's change log (issue 15)."""
import random

from preau.crdt.campaign import Policy
from preau.crdt.documents import ReleaseContent, Row
from preau.crdt.schema import COLUMNS
from preau.crdt.statistics import CampaignStatistics
from preau.node.federation.live_stats import LiveStatistics
from preau.node.federation.store import FedStore

CAMPAIGN = "2026-test-cp"


def _entry(rng, release=1):
    rows = tuple(Row.from_counts(ex, dict(zip(COLUMNS, (rng.randint(0, 5), rng.randint(0, 5), rng.randint(5, 20), 1, 0))))
                 for ex in ("fr-mots", "ma-problemes"))
    content = ReleaseContent(CAMPAIGN, release, "published", "", Policy(), rows, 20)
    return {"release": release, "time": 1000 + release, "heads": "00" * 32, "content": content.to_dict()}


def _put(fed, owner, entry, drop=()):
    with fed.transaction() as conn:
        fed._put_stats_entry(conn, CAMPAIGN, owner, entry, list(drop))


def test_live_statistics_apply_only_what_changed_and_equal_a_fresh_load(tmp_path):
    fed = FedStore(tmp_path / "fed.db", clock=lambda: 1000)
    live = LiveStatistics(fed)
    assert live.get(CAMPAIGN) is None
    rng = random.Random(2)
    for n in range(30):
        _put(fed, f"{n:064x}", _entry(rng))
    first = live.get(CAMPAIGN)
    assert first.schools_contributing == 30

    # A newer release of one school, and a key rotation that drops an old key's entry.
    _put(fed, f"{3:064x}", _entry(rng, release=2))
    _put(fed, "ff" * 32, _entry(rng), drop=[f"{4:064x}"])
    read = []
    original = fed.stats_entry
    fed.stats_entry = lambda c, o: read.append(o) or original(c, o)
    fed.stats = lambda c: (_ for _ in ()).throw(AssertionError("a whole reload for two changes"))
    again = live.get(CAMPAIGN)
    assert again is first  # the same object, updated in place
    assert sorted(read) == sorted([f"{3:064x}", "ff" * 32, f"{4:064x}"])  # only the changed members were read
    del fed.stats, fed.stats_entry
    assert again == CampaignStatistics.from_dict(fed.stats(CAMPAIGN))
    assert again.schools_contributing == 30 and again.release_of(bytes.fromhex(f"{3:064x}")) == 2

    # Nothing changed: no entry is read at all.
    fed.stats_entry = lambda c, o: (_ for _ in ()).throw(AssertionError("read with nothing changed"))
    assert live.get(CAMPAIGN) is first
    fed.close()


def test_another_process_writing_the_same_file_is_seen(tmp_path):
    path = tmp_path / "fed.db"
    server = FedStore(path, clock=lambda: 1000)
    live = LiveStatistics(server)
    rng = random.Random(5)
    _put(server, "aa" * 32, _entry(rng))
    assert live.get(CAMPAIGN).schools_contributing == 1
    other = FedStore(path, clock=lambda: 1000)  # a `preau` command run beside the server
    _put(other, "bb" * 32, _entry(rng))
    other.put_stats("2026-other", {"version": 1, "campaign": "2026-other", "schools": {}})
    other.close()
    assert live.get(CAMPAIGN).schools_contributing == 2
    server.close()
