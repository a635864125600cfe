"""Entry point of the `preau` command."""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="preau",
        description="Préau: pupils' assessment data stays in the school; only signed, anonymised counts leave it.",
    )
    parser.add_argument("--version", action="version", version=f"preau {version('preau')}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
