"""Errors of the storage layer, each written for the person who meets it.

Every error carries a stable `code` and an HTTP-like `status` so the web layer
can map it in one middleware without knowing each class; the message says what
happened and what to do. An operation that raises has changed nothing. The
store's NotFound, Conflict and AccessDenied are also the node's NotFound,
Conflict and Forbidden, so `except errors.NotFound` catches both layers'.
"""
from __future__ import annotations

from preau.node import errors
from preau.node.errors import UserError


class StoreError(UserError):
    """Base of every error the storage layer raises on purpose (a UserError: the CLI and web show it as is)."""

    code = "store_error"
    status = 400

    def __init__(self, message: "str | errors.Words", *, code: str | None = None):
        super().__init__(message, code=code)


class AuthError(StoreError):
    """A password, recovery key or session was refused."""

    code = "auth_failed"
    status = 401


class AccessDenied(StoreError, errors.Forbidden):
    """The acting account is known but may not do this."""

    code = "forbidden"
    status = 403


class NotFound(StoreError, errors.NotFound):
    code = "not_found"
    status = 404


class InvalidInput(StoreError):
    """Data given by a person is wrong (score out of range, unknown exercise...)."""

    code = "invalid_input"
    status = 422


class Conflict(StoreError, errors.Conflict):
    """The request clashes with what is stored (duplicate name, campaign shape change...)."""

    code = "conflict"
    status = 409


class BackupError(StoreError):
    """A backup file is damaged, not a Préau backup, or the key given does not open it."""

    code = "bad_backup"


class SchemaError(StoreError):
    """The database file cannot be used by this version of Préau."""

    code = "schema"
    status = 500
