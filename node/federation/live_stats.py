"""Each campaign's merged statistics held in memory and kept up to date from the store's change log.

The store persists one statistics entry per member (school, or district at an
académie), written in the same transaction as the verified release, and logs
which member changed (`stats_changes`). A page asks `LiveStatistics.get`: one
indexed read of the campaign's last change number; if something changed, only
the changed members' entries are read and applied (`CampaignStatistics.replace_entry`),
so a page costs the same at 50 schools or 3,000 and a release costs one entry.
The first read after start loads the campaign's entries once. Writes from
another process (a `preau` command on the same files) are seen the same way.
"""
from __future__ import annotations

from typing import Any

from preau.crdt.statistics import CampaignStatistics


class LiveStatistics:
    def __init__(self, fed: Any) -> None:
        self.fed = fed
        self._held: dict[str, tuple[int, CampaignStatistics]] = {}

    def get(self, campaign: str) -> CampaignStatistics | None:
        """The campaign's statistics, up to date; None if no member has sent anything for it."""
        seq = self.fed.stats_seq(campaign)
        held = self._held.get(campaign)
        if held is not None and held[0] == seq:
            return held[1]
        if held is not None and seq > held[0]:
            changed = self.fed.stats_changed_since(campaign, held[0])
            if changed is not None:
                stats = held[1]
                for owner, entry in changed:
                    stats.replace_entry(owner, entry)
                self._held[campaign] = (seq, stats)
                return stats if stats.members_count else None
        data = self.fed.stats(campaign)
        if data is None:
            self._held.pop(campaign, None)
            return None
        stats = CampaignStatistics.from_dict(data)
        self._held[campaign] = (seq, stats)
        return stats
