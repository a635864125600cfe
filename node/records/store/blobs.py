"""Small encrypted files the node and the head teacher keep (settings, pending work), by scope."""
from __future__ import annotations

from typing import Any

from preau.node.records import vault
from preau.node.errors import said
from preau.node.records.errors import InvalidInput, StoreError

from .base import (  # the store's types and helpers
    MAX_BLOB,
    NodeActor,
    Session,
    _ad,
)


class BlobsMixin:
    """Part of `Store` (see store/__init__.py); `self` is the Store."""

    def _blob_key(self, actor: Any, scope: str) -> tuple[Any, bytes]:
        if scope == "node":
            a = self._admin_or_node(actor)
            return a, vault.derive(self._node_key, "node-blob")
        if scope == "school":
            s = self._admin(actor)
            return s, vault.derive(s._school_key, "school-blob")
        raise InvalidInput(f"a blob's scope is 'school' (head teacher key) or 'node' (readable unattended), not {scope!r}")

    def put_blob(self, actor: Session | NodeActor, name: str, data: bytes, *, scope: str = "school") -> None:
        """Small encrypted named bytes: 'school' needs the head teacher, 'node' works unattended."""
        a, key = self._blob_key(actor, scope)
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise InvalidInput("a blob name is 1 to 200 characters")
        if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_BLOB:
            raise InvalidInput(f"a blob is bytes of at most {MAX_BLOB} bytes")
        with self._lock, self.db.atomic():
            self.db["blobs"].upsert({"scope": scope, "name": name, "updated_at": self._now(),
                                     "ct": vault.seal(key, bytes(data), _ad("blob", scope, name))}, pk=("scope", "name"))

    def get_blob(self, actor: Session | NodeActor, name: str, *, scope: str = "school") -> bytes | None:
        _, key = self._blob_key(actor, scope)
        row = self._row("SELECT ct FROM blobs WHERE scope = ? AND name = ?", [scope, name])
        if row is None:
            return None
        try:
            return vault.open_(key, row["ct"], _ad("blob", scope, name))
        except vault.DecryptError as exc:
            raise StoreError(said("msg.store.blob_decrypt", name=name)) from exc

    def delete_blob(self, actor: Session | NodeActor, name: str, *, scope: str = "school") -> None:
        self._blob_key(actor, scope)
        with self._lock, self.db.atomic():
            self.db.execute("DELETE FROM blobs WHERE scope = ? AND name = ?", [scope, name])

    def list_blobs(self, actor: Session | NodeActor, prefix: str = "", *, scope: str = "school") -> list[str]:
        self._blob_key(actor, scope)
        return [r["name"] for r in self.db.query("SELECT name FROM blobs WHERE scope = ? AND substr(name, 1, ?) = ? ORDER BY name",
                                                 [scope, len(prefix), prefix])]
