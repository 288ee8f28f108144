"""``vcf-server dev|worker|api``: one entry point for every long-running process.

    vcf-server dev      # make run: embedded Temporal dev server + Web UI, worker, API, demo patient
    vcf-server worker   # the worker alone, against TEMPORAL_ADDRESS (python -m worker.main)
    vcf-server api      # the HTTP API and codec server alone (python -m api.main)

Each subcommand delegates to the existing entry point, so its behaviour (exit codes included) is
that module's. Every help text lists the environment variables :class:`worker.settings.Settings`
reads, generated from its fields so the list cannot drift from the model.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from worker.settings import Settings

# Read with os.environ outside Settings (logging before Settings exists; pathway.guideline at import).
EXTRA_VARIABLES = {"VCF_LOG_LEVEL": "INFO (dev: WARNING)",
                   "VCF_SEEDS_DIR": "<project>/seeds (the guideline definitions)"}


def settings_variables() -> dict[str, str]:
    """Each environment variable ``Settings`` reads, with its default as help shows it."""
    variables = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if not isinstance(alias, str):
            raise TypeError(f"Settings.{name}: expected one environment variable name as its alias")
        default = field.get_default(call_default_factory=True)
        variables[alias] = "(unset)" if default is None else str(default)
    return variables


def environment_help() -> str:
    """The epilog every help text ends with: the variables and their defaults."""
    variables = {**settings_variables(), **EXTRA_VARIABLES}
    width = max(map(len, variables))
    lines = [f"  {name.ljust(width)}  {default}" for name, default in variables.items()]
    return ("environment (worker/settings.py; an empty variable counts as unset):\n" + "\n".join(lines) +
            "\n\nA key ring (VCF_KEY_RING or VCF_KEY_RING_FILE) is required by worker and api; dev creates one.")


def _dev() -> None:
    from worker.dev import main
    main()


def _worker() -> None:
    from worker.main import main
    main()


def _api() -> None:
    from api.main import main
    main()


COMMANDS: dict[str, tuple[Callable[[], None], str]] = {
    "dev": (_dev, "everything locally (make run): Temporal dev server + Web UI, worker, API, demo patient"),
    "worker": (_worker, "the worker: runs patient pathways and their order-book activities (TEMPORAL_ADDRESS)"),
    "api": (_api, "the HTTP API and payload codec server (/healthz, /readyz, /v1/..., /codec)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``vcf-server`` parser, one subparser per process."""
    epilog = environment_help()
    parser = argparse.ArgumentParser(prog="vcf-server", description="Run a VCF pathway process.", epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary, description=summary, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    COMMANDS[args.command][0]()


if __name__ == "__main__":
    main()
