"""Errors of the crdt layer. Each carries a stable `code` and a message a person can act on."""
from __future__ import annotations


class CrdtError(Exception):
    """Base of every error this layer raises on purpose."""

    code = "crdt_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class CampaignError(CrdtError):
    """A campaign definition is invalid; `location` says where (for example `exercises[2].thresholds`)."""

    code = "invalid_campaign"

    def __init__(self, location: str, message: str):
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)
