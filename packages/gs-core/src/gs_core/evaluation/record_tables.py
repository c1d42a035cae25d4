"""The command line of the scripts that join several runs' JSON records into one table (runs
of other seeds or variants trained in separate GPU leases): records in, a markdown table on
stdout, and with ``--out`` the numbers as JSON, written atomically and never over an existing
file without ``--overwrite``. What joins and how is each script's own (``join``, ``markdown``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


class RecordError(ValueError):
    """A record that cannot join the table; the message names the file and what was expected."""


def record_table_main(
    argv: list[str] | None,
    *,
    description: str,
    records_help: str,
    join: Callable[[list[Path]], dict],
    markdown: Callable[[dict], str],
) -> dict:
    """Parse ``RECORD... [--out FILE] [--overwrite]``, join the records, print the table and
    return the joined numbers. A :class:`RecordError` or an existing ``--out`` exits with status
    2 and one ``error:`` line."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("records", nargs="+", type=Path, help=records_help)
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = ap.parse_args(argv)
    if args.out is not None and args.out.exists() and not args.overwrite:
        ap.exit(2, f"error: {args.out} exists (pass --overwrite to replace it)\n")
    try:
        joined = join(args.records)
    except RecordError as e:
        ap.exit(2, f"error: {e}\n")
    print(markdown(joined))
    if args.out is not None:
        from gs_core.io.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(joined, indent=2) + "\n")
    return joined


__all__ = ["RecordError", "record_table_main"]
