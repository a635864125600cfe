"""The two error families of the protocol layer.

`LocalProtocolError`: our caller used the API wrongly (send before the
handshake, offer a document the peer may not have). `RemoteProtocolError`: the
peer, or someone on the path, sent something we refuse. Each carries a stable
`code` (tested, logged, mapped to HTTP by the node) and a message a person can
act on. Any error ends the connection: nothing half-works afterwards.
"""
from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error this layer raises on purpose."""

    code = "protocol_error"

    retry_after: int | None = None  # seconds, when the peer said when to try again (busy, shutting down)

    def __init__(self, message: str, *, code: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = int(retry_after)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class LocalProtocolError(ProtocolError):
    code = "local_error"


class RemoteProtocolError(ProtocolError):
    code = "remote_error"
