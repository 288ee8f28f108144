"""The flood: thousands of requests made from the API's own OpenAPI description (schemathesis,
valid and invalid cases of every operation) and from hypothesis strategies for bodies and headers
of the write routes, some aimed at a few enrolled patients.

Every answer must be below 500, and every error JSON ``{"error", "detail"}``; a refusal of what
was sent (400, 409, 413, 422) names the field in each ``detail`` line (``field: reason``).
Afterwards the aimed-at pathways must still take and apply a valid event (:mod:`drill.verdict`).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

NAMES_A_FIELD = re.compile(r"^[^:\s][^:]*: .+")
REFUSALS_NAMING_A_FIELD = {400, 409, 413, 422}
SCHEMA_SHARE = 10  # one request in ten is a schemathesis case; the rest, hypothesis bodies and headers
WRITE_PATHS = ("/v1/patients", "/v1/patients/{pid}/events", "/v1/fhir/Observation")

scalars = st.none() | st.booleans() | st.integers(-20, 1000) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
near_events = st.fixed_dictionaries({"type": st.sampled_from(["pain", "mri", "dxa", "radiograph", "neuro", "x"])},
                                    optional={"nrs": st.integers(-2, 12) | json_values,
                                              "etiology": st.sampled_from(["osteoporotic", "indeterminate", "?"]),
                                              "t_score": st.floats(-8, 6) | json_values,
                                              "height_loss_pct": st.floats(-5, 110) | json_values,
                                              "deficit": st.just(False) | json_values,
                                              "event_id": st.text(max_size=140) | json_values,
                                              "observed_at": st.text(max_size=30) | json_values,
                                              "extra": json_values})
bodies = st.one_of(near_events.map(json.dumps), json_values.map(json.dumps), st.binary(max_size=64),
                   st.sampled_from(["", "{", "[1,", "NaN", '{"type": "pain", "type": "mri"}', "\xff"]))
header_text = st.text(string.printable.strip(), max_size=40)
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "application/fhir+json", "text/plain",
                                     "application/json; charset=latin-1", "multipart/form-data"]) | header_text,
    "Accept": header_text, "X-Forwarded-Host": header_text, "Content-Encoding": st.sampled_from(["gzip", "br"]),
    "Origin": header_text})


@dataclass
class FloodResult:
    """What the flood sent and what came back."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # "METHOD path -> status"
    unnamed_errors: list[str] = field(default_factory=list)  # an error JSON not naming the field
    not_sent: int = 0  # cases the HTTP client itself refused to send (e.g. an invalid header)
    unanswered: int = 0  # sent, but no answer came (connection dropped, timeout)

    def figures(self) -> dict[str, Any]:
        return {"flood_requests": self.sent, "flood_server_errors": len(self.server_errors),
                "flood_errors_not_naming_field": len(self.unnamed_errors), "flood_unanswered": self.unanswered,
                "flood_not_sent": self.not_sent,
                "flood_statuses": dict(sorted(self.statuses.items()))}


def error_shape_problem(status: int, body: Any) -> str | None:
    """Why an error answer is not the API's error JSON naming the field (None if it is)."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not isinstance(body.get("detail"),
                                                                                              list):
        return "not the error JSON"
    if status in REFUSALS_NAMING_A_FIELD and not body["detail"]:
        return "no detail"
    if status in REFUSALS_NAMING_A_FIELD and not all(isinstance(d, str) and NAMES_A_FIELD.match(d)
                                                     for d in body["detail"]):
        return "a detail line not of the form 'field: reason'"
    return None


def flood(api_url: str, token: str, targets: list[str], count: int, seed: int) -> FloodResult:
    """Send ``count`` generated requests (blocking: run it in a thread)."""
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json", headers=auth)
    # An operation the description gets wrong is a failure of its own (test_openapi_contract.py); skip it here.
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    cases = st.one_of(*[op.as_strategy(mode) for op in operations
                        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])
    aimed = st.sampled_from(targets) if targets else st.just("pt-nobody")
    with_token = st.sampled_from([True] * 9 + [False])  # mostly past authentication, to reach the routes
    raw = st.tuples(st.sampled_from(WRITE_PATHS), aimed, bodies, headers, with_token)
    session = requests.Session()
    result = FloodResult()

    def judge(method: str, path: str, response: requests.Response) -> None:
        result.sent += 1
        result.statuses[response.status_code] += 1
        where = f"{method} {_template(path, targets)} -> {response.status_code}"
        if response.status_code >= 500:
            result.server_errors.append(where)
        elif response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            problem = error_shape_problem(response.status_code, body)
            if problem:
                result.unnamed_errors.append(f"{where}: {problem}")

    def send_case(case: Any, pid: str, aim: bool) -> None:
        """A case from the OpenAPI description, with the drill's token (auth is tested elsewhere)."""
        case.headers = {**(case.headers or {}), **auth}
        if "patient_id" in (case.path_parameters or {}) and aim:
            case.path_parameters["patient_id"] = pid
        judge(case.method, case.formatted_path, case.call(base_url=api_url, session=session, timeout=30))

    def send_raw(path: str, pid: str, body: Any, extra: dict[str, str], with_token: bool) -> None:
        """A write route with generated bytes and headers."""
        path = path.replace("{pid}", pid)
        response = session.post(api_url + path, data=body.encode() if isinstance(body, str) else body,
                                headers={**extra, **(auth if with_token else {})}, timeout=30)
        judge("POST", path, response)

    def run(strategy: Any, send: Any, examples: int) -> None:
        @hypothesis_seed(seed)
        @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(drawn=strategy)
        def one(drawn: tuple[Any, ...]) -> None:
            try:
                send(*drawn)
            except (requests.ConnectionError, requests.Timeout):
                result.unanswered += 1  # sent, and the API never answered: a failure
            except Exception:  # noqa: BLE001 - the HTTP client refused to send it (an invalid header, ...)
                result.not_sent += 1

        one()

    # Cases from the description cost far more to generate than raw bodies and headers: a share of them.
    from_schema = max(1, count // SCHEMA_SHARE) if count else 0
    run(st.tuples(cases, aimed, st.booleans()), send_case, from_schema)
    run(raw, send_raw, count - from_schema)
    return result


def _template(path: str, targets: list[str]) -> str:
    """The path without patient ids (a report names routes, not patients)."""
    for pid in targets:
        path = path.replace(pid, "{patient_id}")
    return path if len(path) < 80 else path[:77] + "..."
