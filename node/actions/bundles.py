"""Moving signed documents on a file instead of the network: `preau bundle export` and `import`."""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Any

from preau.node.errors import EXIT_DATA

from .common import checked_output, opened_node, refuse


@dataclass(frozen=True, slots=True)
class Exported:
    path: pathlib.Path
    documents: int
    role: str  # a district's bundle goes up to its académie; a school's to its district


def export_bundle(settings: Any, *, output: str, **_: Any) -> Exported:
    out = checked_output(output, "preau.bundle")
    with opened_node(settings) as node:
        data = node.federation.export_bundle()
    out.write_bytes(data)
    return Exported(out, len(json.loads(data)["documents"]), settings.role)


@dataclass(frozen=True, slots=True)
class Imported:
    documents: int
    carried: int  # documents of other schools, kept to pass on to the district


def import_bundle(settings: Any, *, file: str, carry: bool = False, **_: Any) -> Imported:
    try:
        data = pathlib.Path(file).read_bytes()
    except OSError as exc:
        raise refuse("action.cannot_read", exit_code=EXIT_DATA, file=file, reason=exc.strerror) from None
    with opened_node(settings) as node:
        if carry and node.federation.upstream() is None:
            raise refuse("action.carry_without_district")
        accepted = node.federation.import_bundle(data, carry=carry)
        carried = [a for a in accepted if node.federation.is_carried(a.owner.hex())]
    return Imported(len(accepted), len(carried))
