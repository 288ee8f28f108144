"""The ``vcf`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from cli.commands import register
from pathway.contract import ContractError, parse_scenario

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _simulate(args: argparse.Namespace) -> int:
    try:
        raw = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return EXIT_INVALID
    except json.JSONDecodeError as exc:
        print(f"error: {args.file}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", file=sys.stderr)
        return EXIT_INVALID
    try:
        scenario = parse_scenario(raw)
    except ContractError as exc:
        print(f"error: invalid scenario {args.file}:", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return EXIT_INVALID
    from cli.simulate import simulate  # Temporal is imported only when something will run

    result = asyncio.run(simulate(scenario))
    print(json.dumps(result, indent=2 if args.pretty else None))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="vcf", description="The VCF care pathway, executed.")
    sub = p.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run a scenario file on the time-skipping test server; JSON out")
    sim.add_argument("file", help="scenario JSON file (see pathway-contract.md)")
    sim.add_argument("--pretty", action="store_true", help="indent the JSON output")
    sim.set_defaults(func=_simulate)
    register(p, sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vcf`` console script."""
    args = parser().parse_args(argv)
    code = args.func(args)
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit without interpreter teardown: the Temporal core runtime can crash it (sdk-python #300).
    os._exit(code)
