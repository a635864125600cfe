"""Errors of the crdt layer. Each carries a stable `code` and a message a person can act on.

Two families, as in h11: `CrdtUsageError` means our caller misused the API (a
bug to fix in the calling code); every other `CrdtError` means the bytes or
documents we were given are bad (a peer, a relay or a disk), and the caller
should drop them and carry on. Messages never quote a pupil reference.
"""
from __future__ import annotations


class CrdtError(Exception):
    """Base of every error this layer raises on purpose.

    `code` names the mistake and `params` holds its values (pure data): the
    node renders them from its catalog, French first, and never reads the
    English message back. The message is for logs, scripts and tests.
    """

    code = "crdt_error"

    def __init__(self, message: str, *, code: str | None = None, params: dict | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.params: dict = dict(params or {})


class CampaignError(CrdtError):
    """A campaign definition is invalid; `location` says where (for example `exercises[2].thresholds`).

    Every raise site names its own `code` (one of `CAMPAIGN_CODES`) and the
    values the message quotes, as `params`; tests/node/test_error_codes.py
    checks each raise site and that the node's catalog says each code.
    """

    code = "invalid_campaign"

    def __init__(self, location: str, code: str, message: str, **params: object):
        self.location = location
        super().__init__(f"{location}: {message}" if location else message, code=code, params=params)


CAMPAIGN_CODES = frozenset({
    "not_a_campaign", "not_a_table", "unknown_field", "missing", "whole_number", "between", "text", "too_long", "ident", "date",
    "one_of", "max_equals_items", "items_wpm", "two_thresholds", "threshold_order", "school_year",
    "closes_before", "bool", "no_exercise", "too_many_exercises", "duplicate_exercise", "no_such_exercise",
    "policy_below_floor", "batch_below_cohort",
})
"""Every code a `CampaignError` may carry: the node maps each to its catalog words."""


class PolicyBelowFloorError(CampaignError):
    """A campaign asks for less disclosure control than the national floor (or a batch below its cohort).

    `setting`, `asked` and `minimum` are the parameters a message catalog needs;
    `code` is `policy_below_floor` or `batch_below_cohort`.
    """

    code = "policy_below_floor"

    def __init__(self, location: str, setting: str, asked: int, minimum: int, *, code: str = "policy_below_floor"):
        self.setting, self.asked, self.minimum = setting, asked, minimum
        if code == "batch_below_cohort":
            why = (f"asks for batches of {asked} pupils, fewer than its min_cohort of {minimum}; "
                   "min_batch must be at least min_cohort")
        else:
            why = (f"asks for {asked}, below the national minimum of {minimum}; "
                   "a campaign may raise this setting, never lower it")
        super().__init__(location, code, why, setting=setting, asked=asked, minimum=minimum)


class CrdtUsageError(CrdtError):
    """The calling code misused the API (for example wrote an undeclared field). Fix the caller."""

    code = "usage_error"


class AggregateAlreadySentError(CrdtUsageError):
    """This campaign's aggregate with counts has already gone up; a second one could be subtracted from it."""

    code = "aggregate_already_sent"


class SchemaError(CrdtUsageError):
    """A writer was given a field or value the document kind does not declare; nothing was written."""

    code = "undeclared_field"


class DocumentError(CrdtError):
    """Bytes or a document received from elsewhere are not a valid document of the expected kind."""

    code = "invalid_document"


class CampaignRefusedError(DocumentError):
    """A received campaign document asks for less disclosure control than the national floor.

    Same `code` and `params` as the `PolicyBelowFloorError` it comes from, so the
    node can tell the head teacher which setting, what was asked and the minimum.
    """

    def __init__(self, message: str, *, code: str, params: dict):
        super().__init__(message, code=code, params=params)


class SyncMessageError(CrdtError):
    """A sync message could not be applied; the document is unchanged."""

    code = "invalid_sync_message"


class ForeignChangeError(SyncMessageError):
    """A peer sent changes into a document this node owns; they were refused."""

    code = "foreign_change"


class ReleaseError(CrdtError):
    """A signed release was refused. `code` says which rule failed; the reader's state is unchanged."""

    code = "release_refused"


class ReleaseDecodeError(ReleaseError):
    """The bytes are not a well-formed signed release."""

    code = "malformed_release"


class BadSignatureError(ReleaseError):
    code = "bad_signature"


class WrongSignerError(ReleaseError):
    code = "wrong_signer"


class RollbackError(ReleaseError):
    code = "rollback"


class MissingHeadsError(ReleaseError):
    code = "missing_heads"


class WrongKindError(ReleaseError):
    code = "wrong_kind"


class FinalRollbackError(ReleaseError):
    """A non-final release after a final one: a campaign's final release is never undone."""

    code = "final_rollback"
