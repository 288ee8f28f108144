"""The ``vcf`` subcommands that talk to the HTTP API: enroll, event, status, timeline, orders.

Input is checked against the contract before anything is sent (exit 2 naming the field).
Readable tables by default; ``--json`` prints the API's JSON as is.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from activities.order_model import ORDER_STATUSES
from cli.api_client import ApiClient, ApiFailure, default_token
from pathway import contract_json
from pathway.contract import (
    EVENT_TYPES,
    FRACTURE_LEVELS,
    PATIENT_ID_EXPECTED,
    ContractError,
    RedFlag,
    is_patient_id,
    parse_enrollment,
    parse_event,
    text_fields,
)

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_CONFLICT = 0, 1, 2, 3, 4
EXIT_CODES_HELP = """exit codes:
  0  ok (also: already enrolled with the same data, event already accepted)
  1  server or connection error (API unreachable, bad --url, unauthorized, 5xx, a 404 not from the API)
  2  invalid input (the message names the field; also an unreadable input file)
  3  not found (the API says: unknown patient or order)
  4  conflict (pathway ended, patient enrolled with different data, event id reused)

environment: VCF_API_URL (default http://127.0.0.1:8000); VCF_API_TOKEN, else the token in
$VCF_DATA_DIR/api-token (default .data/api-token)"""
RED_FLAGS: tuple[str, ...] = get_args(RedFlag)


class InputError(Exception):
    """Bad command-line input; ``lines`` name each field and reason."""

    def __init__(self, lines: list[str]):
        super().__init__("; ".join(lines))
        self.lines = lines


# --- Output ---------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _fmt_day(day: Any) -> str:
    return f"{day:.1f}" if isinstance(day, (int, float)) else "?"


# --- Input ----------------------------------------------------------------------------------

def read_json(source: str) -> Any:
    """A JSON file ('-' for stdin); :class:`InputError` if it cannot be read, is not UTF-8 text
    (a directory, a binary file) or is not JSON."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise InputError([f"{source}: cannot be read ({exc.strerror or type(exc).__name__})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError([f"{source}: not UTF-8 text (byte {exc.start}); expected a JSON file"]) from None
    try:
        return contract_json.loads(text)
    except contract_json.DuplicateKey as exc:
        raise InputError([str(exc)]) from None
    except json.JSONDecodeError as exc:
        raise InputError([f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]) from None
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InputError([f"{source}: not valid JSON ({why})"]) from None


def _field_values(event_type: str, pairs: list[str]) -> dict[str, Any]:
    """``name=value`` pairs of an event; a value that reads as JSON (6, true, -2.5) is taken as such,
    except for the contract's text fields (``drug=123`` is the text "123")."""
    text = text_fields(event_type)
    fields: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise InputError([f"{pair}: expected name=value"])
        if name in fields:
            raise InputError([f"{name}: given more than once"])
        try:
            fields[name] = raw if name in text else contract_json.loads(raw)
        except ValueError:
            fields[name] = raw
    return fields


def _patient(patient_id: str) -> str:
    """The patient key as given, or :class:`InputError` naming it: checked before it goes into a URL path
    (a '/' in it would reach another route)."""
    if not is_patient_id(patient_id):
        raise InputError([f"patient: {PATIENT_ID_EXPECTED}"])
    return patient_id


def _checked(parse: Callable[[Any], Any], body: Any) -> None:
    try:
        parse(body)
    except ContractError as exc:
        raise InputError(exc.errors) from None


# --- Commands -------------------------------------------------------------------------------

def _enroll(api: ApiClient, args: argparse.Namespace) -> int:
    if args.file:
        options = (("--id", args.id), ("--level", args.level), ("--height-loss", args.height_loss),
                   ("--pain", args.pain), ("--red-flag", args.red_flag))
        given = [flag for flag, value in options if value is not None]
        if given or args.onset_days:
            raise InputError([f"{flag}: not with a FILE (the file is the enrollment)"
                              for flag in given or ["--onset-days"]])
        body = read_json(args.file)
    else:
        body = {"id": args.id, "fracture_level": args.level, "height_loss_pct": args.height_loss,
                "pain_nrs": args.pain, "onset_days_before_enrollment": args.onset_days,
                "red_flags": args.red_flag or []}
        missing = [f"{flag}: required (or give a FILE)" for flag, key in
                   (("--id", "id"), ("--level", "fracture_level"), ("--height-loss", "height_loss_pct"),
                    ("--pain", "pain_nrs")) if body[key] is None]
        if missing:
            raise InputError(missing)
    _checked(parse_enrollment, body)
    status, answer = api.enroll(body)
    if args.json:
        _print_json(answer)
    else:
        verb = "enrolled" if status == 201 else "already enrolled (same data)"
        print(f"{answer['patient_id']}: {verb}; guideline {answer['guideline_version']}")
    return EXIT_OK


def _event(api: ApiClient, args: argparse.Namespace) -> int:
    patient = _patient(args.patient)
    if args.file:
        if args.type or args.fields:
            raise InputError(["type: not with --file (the file is the event)"])
        body = read_json(args.file)
        if not isinstance(body, dict):
            raise InputError([f"{args.file}: expected one JSON object (an event)"])
    else:
        if not args.type:
            raise InputError(["type: required (or --file)"])
        body = {"type": args.type, **_field_values(args.type, args.fields)}
    if args.event_id:
        body["event_id"] = args.event_id
    if args.observed_at:
        body["observed_at"] = args.observed_at
    _checked(parse_event, body)
    status, answer = api.event(patient, body)
    if args.json:
        _print_json(answer)
    elif status == 200:
        print(f"{answer['type']} event {answer['event_id']}: already accepted (applied once)")
    else:
        print(f"{answer['type']} event {answer['event_id']}: accepted")
    return EXIT_OK


def _review_text(review: dict | None) -> str:
    if not review:
        return "none"
    return f"day {review['day']:g}" if review.get("day") is not None else str(review.get("at"))


def _print_notes(answer: dict) -> None:
    """The pathway's decision notes, then the API's notes on what it could not read live."""
    decisions = answer.get("notes") or []
    if decisions:
        print("\ndecision notes")
        print(table(["day", "note"], [[_fmt_day(n["day"]), n["text"]] for n in decisions]))
    for note in answer.get("source_notes") or []:
        print(f"note: {note}")


def _status(api: ApiClient, args: argparse.Namespace) -> int:
    s = api.state(_patient(args.patient))
    if args.json:
        _print_json(s)
        return EXIT_OK
    pain = s.get("latest_pain")
    review = s.get("next_review")
    print(table(["field", "value"], [
        ["patient", s["patient_id"]],
        ["status", s["status"] + (" (paused: the schedule is held)" if s.get("paused") else "")],
        ["phase", s.get("phase")],
        ["pathway day", _fmt_day(s.get("day"))], ["guideline", s.get("guideline_version")],
        ["latest pain", f"NRS {pain['nrs']} (day {_fmt_day(pain['day'])})" if pain else "unknown"],
        ["escalation", s.get("escalation_state")],
        ["next review", _review_text(review)],
        ["next step", s.get("next_step")], ["source", s["source"] + ("" if s["live"] else " (not live)")],
    ]))
    _print_notes(s)
    print("\nactions")
    actions = [[_fmt_day(a["day"]), a["kind"], a["citation"]] for a in s.get("actions") or []]
    print(table(["day", "kind", "citation"], actions))
    print("\npending orders")
    print(table(["order", "resource", "kind", "priority"],
                [[o["id"], o["resource"], o["kind"], o["priority"]] for o in s["pending_orders"]]))
    return EXIT_OK


def _timeline(api: ApiClient, args: argparse.Namespace) -> int:
    t = api.timeline(_patient(args.patient))
    if args.json:
        _print_json(t)
        return EXIT_OK
    print(table(["day", "entry", "summary"], [[_fmt_day(e["day"]), e["entry"], e["summary"]] for e in t["entries"]]))
    _print_notes(t)
    return EXIT_OK


def _orders(api: ApiClient, args: argparse.Namespace) -> int:
    bundle = api.orders(args.patient and _patient(args.patient), args.status)
    if args.json:
        _print_json(bundle)
        return EXIT_OK
    rows = []
    for entry in bundle.get("entry") or []:
        r = entry["resource"]
        subject = (r.get("subject") or r.get("for") or {}).get("reference", "").removeprefix("Patient/")
        concept = r.get("code") or r.get("medicationCodeableConcept") or {}
        # A multi-drug order names its drugs as ingredients of a contained Medication.
        concepts = [concept] + [i.get("itemCodeableConcept", {}) for m in r.get("contained", [])
                                for i in m.get("ingredient", [])]
        codes = ",".join(c["code"] for k in concepts for c in k.get("coding", []))
        title = (concept.get("text") or (r.get("medicationReference") or {}).get("display")
                 or (r.get("payload") or [{}])[0].get("contentString", ""))
        rows.append([r["id"], subject, r["resourceType"], r["meta"]["tag"][0]["code"], r.get("priority"), codes, title])
    print(table(["order", "patient", "resource", "status", "priority", "codes", "title"], rows))
    return EXIT_OK


# --- Wiring ---------------------------------------------------------------------------------

def _run(command: Callable[[ApiClient, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(ApiClient(args.url, args.token or default_token()), args)
        except InputError as exc:
            return print_input_error(exc)
        except ApiFailure as exc:
            print(f"error: {exc.error}" + (f" (HTTP {exc.status})" if exc.status else ""), file=sys.stderr)
            for line in exc.detail:
                print(f"  {line}", file=sys.stderr)
            return exit_code_for(exc)
        except ValidationError as exc:  # a malformed setting in the environment (worker.settings)
            return print_input_error(InputError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]))
    return run


def print_input_error(exc: InputError) -> int:
    """Report bad input on stderr; the exit code for it."""
    print("error: invalid input:", file=sys.stderr)
    for line in exc.lines:
        print(f"  {line}", file=sys.stderr)
    return EXIT_INVALID


def exit_code_for(exc: ApiFailure) -> int:
    """The documented exit code for a failed API call: 3 only when the API itself says the
    patient or order is unknown (a 404 from a wrong URL is a failure, 1)."""
    if exc.status in (400, 413, 422):
        return EXIT_INVALID
    if exc.unknown_resource:
        return EXIT_NOT_FOUND
    if exc.status == 409:
        return EXIT_CONFLICT
    return EXIT_FAILED


def register(parser: argparse.ArgumentParser, sub: Any) -> None:
    """Add the API subcommands to the ``vcf`` parser."""
    parser.epilog = EXIT_CODES_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="API base URL (default $VCF_API_URL or http://127.0.0.1:8000)")
    common.add_argument("--token", help="bearer token (default $VCF_API_TOKEN or .data/api-token)")
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")

    def add(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common], epilog=EXIT_CODES_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=_run(func))
        return p

    p = add("enroll", "enroll a patient (starts the pathway)", _enroll)
    p.add_argument("file", nargs="?", help="enrollment JSON file ('-' for stdin) instead of the options")
    p.add_argument("--id", help="pseudonymous patient key (never a name or MRN)")
    p.add_argument("--level", choices=FRACTURE_LEVELS, metavar="LEVEL", help="fracture level, T1-T12 or L1-L5")
    p.add_argument("--height-loss", type=float, help="vertebral height loss, percent")
    p.add_argument("--pain", type=int, help="pain NRS 0-10")
    p.add_argument("--onset-days", type=int, default=0, help="days from fracture to enrollment (default 0)")
    p.add_argument("--red-flag", action="append", choices=RED_FLAGS, help="a red flag (repeatable)")

    p = add("event", "send one event to a patient's pathway", _event)
    p.add_argument("patient", help="patient key")
    p.add_argument("type", nargs="?", choices=EVENT_TYPES, metavar="TYPE", help=f"one of {', '.join(EVENT_TYPES)}")
    p.add_argument("fields", nargs="*", metavar="NAME=VALUE", help="event fields, e.g. nrs=6 or bed_bound=true")
    p.add_argument("--file", help="event JSON file ('-' for stdin) instead of TYPE and fields")
    p.add_argument("--event-id", help="idempotency key: the same id twice is applied once")
    p.add_argument("--observed-at", help="ISO 8601 time with a zone (default: now)")

    p = add("status", "where a patient is on the pathway", _status)
    p.add_argument("patient", help="patient key")
    p = add("timeline", "a patient's events, actions and notes in order", _timeline)
    p.add_argument("patient", help="patient key")
    p = add("orders", "orders, referrals and tasks (FHIR Bundle with --json)", _orders)
    p.add_argument("--patient", help="only this patient's orders")
    p.add_argument("--status", choices=ORDER_STATUSES)
