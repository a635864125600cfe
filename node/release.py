"""The school's release step: preview exactly what would leave, then approve it.

Disclosure control (`preau.crdt.disclosure.next_release`) decides from the
pupils' pseudonymous outcomes and the encrypted history of earlier releases;
nothing is written or signed until the head teacher approves the preview.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any

from preau.crdt.campaign import Campaign, Policy, PolicyStatement, describe_policy
from preau.crdt.disclosure import (AskedChange, PinnedCampaign, Reason, ReleaseDecision, ReleaseHistory,
                                   kept_for_the_pool, next_release, pin_campaign)
from preau.crdt.pooling import pool_vector
from preau.crdt.schema import document_id
from preau.crdt.signing import SignedRelease

from .codes import reasons_words
from .errors import Conflict, UserError, words
from .testhooks import unprotected
from preau.node.federation.pools import went_into_a_pool
from preau.node.federation.rules import Federation, too_close_to_lost

HISTORY_BLOB = "release-history/{campaign}"


@dataclass(frozen=True)
class ReleasePreview:
    campaign: str
    decision: ReleaseDecision
    closing: bool
    policy: tuple[PolicyStatement, ...] = ()  # the policy applied, in plain terms (catalog keys + numbers)
    asked: tuple[AskedChange, ...] = ()  # what a newer campaign version asked for and this school keeps as before
    thresholds: tuple[tuple[str, tuple[int, int]], ...] = ()  # (exercise, thresholds) pinned by earlier releases
    names: tuple[tuple[str, str], ...] = ()  # (exercise id, its name in the campaign): reasons say the name

    @property
    def will_release(self) -> bool:
        return self.decision.release

    def document(self) -> dict[str, Any] | None:
        """The raw content of the document as it would be signed and sent."""
        return None if self.decision.content is None else self.decision.content.to_dict()

    def table(self) -> list[dict[str, Any]]:
        content = self.decision.content
        if content is None:
            return []
        return [{"exercise": r.exercise, **r.to_dict()} for r in content.rows]


def _history(store, session, federation: Federation, campaign_id: str) -> ReleaseHistory:
    raw = store.get_blob(session, HISTORY_BLOB.format(campaign=campaign_id))
    history = ReleaseHistory.from_dict(json.loads(raw)) if raw else ReleaseHistory(campaign_id)
    # If the node stopped between signing a release and saving its history, carry on numbering after
    # the release that did leave (its number is in the federation store).
    rid = document_id("release", federation.key, campaign_id)
    latest = federation.fed.latest_release(rid)
    # A node restored from a backup made before its last releases: the district holds numbers this history
    # forgot (its receipts say so, and `Federation.take_back` brought those releases back). A number the
    # district holds is never signed again: it would keep the old release and never take the new one.
    number = max([latest[0] if latest else 0, federation.receipted(rid), federation.fed.highest_signed(rid),
                  *(c.release for c in federation.lost_contents(rid))])
    if number > history.last_release:
        history = history.advanced(number)
    return history


def _beside_lost_releases(decision: ReleaseDecision, history: ReleaseHistory, lost) -> ReleaseDecision:
    """Hold a release whose counts would move too little against a release the district holds and this school's
    history forgot (restored from an older backup; `Federation.take_back` brought it back, as counts only).

    The history keeps each published state pupil by pupil and checks both batching rules against it; of a
    release taken back only the counts are known, so the count-level rule is applied to it
    (`rules.too_close_to_lost`). Otherwise nothing leaves, and the release waits for more changes, said as the
    batching rule says it.
    """
    content = decision.content
    if content is None or content.status != "published":
        return decision
    latest = max(lost, key=lambda c: c.release, default=None)
    updated = next((r.params.get("updated") for r in decision.reasons if r.code == "released"), None)
    if (updated == 0 and latest is not None and latest.status == "published" and latest.rows != content.rows
            and (latest.cohort or 0) >= content.policy.min_cohort):
        # Nothing moves in this release (a closing one, say): its rows are the history's last published state,
        # older than the release the district holds. Sent as they are, they would take the district's figures
        # back to before the backup; the district's own release, which tells it nothing new, goes instead.
        again = dataclasses.replace(latest, release=content.release, final=content.final, policy=content.policy)
        return dataclasses.replace(decision, content=again, history=dataclasses.replace(decision.history, last=again))
    need = content.policy.min_batch
    close = too_close_to_lost(content, lost)
    if not close:
        return decision
    moved, exercise, column = min(close)
    reason = (f"waiting on {exercise}: its {column} count would move by {moved} against release "
              f"{max(c.release for c in lost)}, which the district holds from before this node was restored "
              f"(every count moves by 0 or at least {need})")
    why = (Reason("waiting_counts", {"exercise": exercise, "column": column, "moved": moved, "min_batch": need}),)
    others = len({ex for _, ex, _ in close}) - 1
    if others > 0:
        reason += f"; {others} other exercise{'s' if others > 1 else ''} also waiting"
        why += (Reason("others_waiting", {"count": others}),)
    held = tuple(sorted({ex: m for m, ex, _ in sorted(close, reverse=True)}.items()))  # (exercise, least move)
    return ReleaseDecision(False, reason, None, history, held, reasons=why)


def _pinned(store, session, federation: Federation, campaign: Campaign) -> tuple[PinnedCampaign | None, ReleaseHistory]:
    """The campaign with thresholds and policy as first released under, and the history: a newer campaign
    version cannot re-cut the same pupils' scores at other points (docs/privacy.md, "Moving thresholds")."""
    history = _history(store, session, federation, campaign.id)
    if unprotected("pinning"):  # test hook: forget the pins, as a Préau without them would
        return None, dataclasses.replace(history, thresholds={}, policy=None)
    return pin_campaign(campaign, history), history


def pool_counts(store, session, federation: Federation, campaign_id: str) -> tuple[tuple[int, ...], Policy]:
    """The school's vector for a secure-aggregation pool (`crdt.pooling.pool_vector`) and the policy it
    applies, both under the campaign as this school first released it, as `preview_release` uses: a
    pool is one more way counts leave, and must not re-cut pupils at thresholds a newer version moved."""
    campaign = store.get_campaign(session, campaign_id)
    pinned, _history = _pinned(store, session, federation, campaign)
    applied = pinned.campaign if pinned is not None else campaign
    return pool_vector(store.release_outcomes(session, campaign_id, campaign=applied), applied), applied.policy


def preview_release(store, session, federation: Federation, campaign_id: str, *,
                    today: _dt.date | None = None, closing: bool | None = None) -> ReleasePreview:
    campaign = store.get_campaign(session, campaign_id)
    if store.is_purged(session, campaign_id):
        raise Conflict(words(f"the named results of {campaign_id} were erased (end of retention, docs/gdpr.md): "
                             "its last release stays with the district as it was, and nothing more can be released "
                             "for it", "release.erased", campaign=campaign_id))
    today = today or _dt.date.today()
    if closing is None:
        closing = campaign.is_closed(today)
    pinned, history = _pinned(store, session, federation, campaign)
    applied = pinned.campaign if pinned is not None else campaign
    outcomes = store.release_outcomes(session, campaign_id, campaign=applied)
    decision = next_release(outcomes, applied, history, closing=closing)
    decision = _beside_lost_releases(decision, history,
                                     federation.lost_contents(document_id("release", federation.key, campaign_id)))
    if went_into_a_pool(federation.fed, campaign_id):
        decision = kept_for_the_pool(decision, history, campaign_id)  # Federation.publish_release refuses too
    return ReleasePreview(campaign_id, decision, closing, describe_policy(applied.policy),
                          pinned.asked if pinned is not None else (), tuple(sorted(history.thresholds.items())),
                          tuple((ex.id, ex.name) for ex in campaign.exercises))


def approve_release(store, session, federation: Federation, preview: ReleasePreview) -> SignedRelease:
    """Sign and store the previewed release; the sync loop then offers it to the district."""
    if not preview.will_release:
        raise Conflict(words(f"nothing to release: {preview.decision.reason}", "codes.nothing_to_release",
                             reason=reasons_words(preview.decision, dict(preview.names))))
    fresh = preview_release(store, session, federation, preview.campaign, closing=preview.closing)
    if fresh.document() != preview.document():
        raise Conflict(words("the results changed since this preview was made: look at the new preview before "
                             "approving", "release.preview_changed"))
    up = federation.upstream()
    if up is None:
        raise UserError(words("this school has not joined its district yet: paste the district's invitation first",
                              "release.not_joined"))
    signed = federation.publish_release(preview.decision.content, to_peer=up["node_id"])
    store.put_blob(session, HISTORY_BLOB.format(campaign=preview.campaign),
                   json.dumps(preview.decision.history.to_dict()).encode())
    return signed
