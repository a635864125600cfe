"""Signed, anonymised aggregate documents on Automerge, and the statistics merged from them.

Pure: no I/O, no clock, no randomness source read implicitly.

Modules: `campaign` (definitions, `group_for`), `schema` (declared shapes, the
one writer), `documents` (the four kinds), `signing` (signed releases and the
reader's rules), `disclosure` (what may leave a school), `statistics` (what a
district merges), `docio` (safe load/save/sync), `crypto` (every nacl call).
See docs/crdt.md.
"""
from .campaign import GROUPS, Campaign, Exercise, Policy, group_for, parse_campaign
from .disclosure import PupilOutcome, ReleaseDecision, ReleaseHistory, next_release, suppress_rows
from .docio import fork_at, generate_sync_message, load_document, merge_document, receive_sync_message, save_document
from .documents import (
    Receipt,
    ReleaseContent,
    Row,
    append_receipt,
    campaign_document,
    latest_receipt,
    read_campaign,
    read_receipts,
    read_release,
    write_campaign,
    write_release,
)
from .errors import CampaignError, CrdtError, CrdtUsageError, DocumentError, ReleaseError, SyncMessageError
from .schema import COLUMNS, document_id, new_document, read_header
from .signing import SignedRelease, VerifiedRelease, sign_release, verify_release
from .statistics import CampaignStatistics, ExerciseStatistics, build_aggregate

__all__ = [
    "GROUPS", "COLUMNS", "Campaign", "Exercise", "Policy", "group_for", "parse_campaign",
    "PupilOutcome", "ReleaseDecision", "ReleaseHistory", "next_release", "suppress_rows",
    "fork_at", "generate_sync_message", "load_document", "merge_document", "receive_sync_message", "save_document",
    "Receipt", "ReleaseContent", "Row", "append_receipt", "campaign_document", "latest_receipt", "read_campaign", "read_receipts",
    "read_release", "write_campaign", "write_release",
    "CampaignError", "CrdtError", "CrdtUsageError", "DocumentError", "ReleaseError", "SyncMessageError",
    "document_id", "new_document", "read_header",
    "SignedRelease", "VerifiedRelease", "sign_release", "verify_release",
    "CampaignStatistics", "ExerciseStatistics", "build_aggregate",
]
