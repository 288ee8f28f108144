"""The ``vcf`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from cli import guideline, tokens
from cli.commands import EXIT_FAILED, EXIT_INVALID, EXIT_OK, InputError, print_input_error, read_json, register
from pathway.contract import ContractError, parse_scenario


def _simulate(args: argparse.Namespace) -> int:
    try:
        raw = read_json(args.file)
    except InputError as exc:
        return print_input_error(exc)
    try:
        scenario = parse_scenario(raw)
    except ContractError as exc:
        print(f"error: invalid scenario {args.file}:", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return EXIT_INVALID
    from cli.simulate import simulate  # Temporal is imported only when something will run
    from security.keyring import KeyRingError

    try:
        result = asyncio.run(simulate(scenario))
    except KeyRingError as exc:  # a key ring is configured, and it is unusable
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(json.dumps(result, indent=2 if args.pretty else None))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="vcf", description="The VCF care pathway, executed.")
    sub = p.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run a scenario file on the time-skipping test server; JSON out")
    sim.add_argument("file", help="scenario JSON file (see docs/contract.md#scenario-files)")
    sim.add_argument("--pretty", action="store_true", help="indent the JSON output")
    sim.set_defaults(func=_simulate)
    register(p, sub)
    guideline.register(sub)
    tokens.register(sub)
    from cohort.cli import register as register_cohort

    register_cohort(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vcf`` console script."""
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``vcf orders | head -1``): stop quietly, and keep the final
        # flush from failing again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_FAILED
    sys.stderr.flush()
    # Exit without interpreter teardown: the Temporal core runtime can crash it (sdk-python #300).
    os._exit(code)
