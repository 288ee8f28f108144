"""What a red-team pass against the running API found, each closed and held by a test: guessable
order ids, unbounded Bundles, patient ids that collide by case, loose FHIR input, duplicate JSON
keys and headers, links built from the Host header, echoed input in errors."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from activities.order_book import OrderBook
from api.app import create_app
from tests.helpers import TEST_CONVERTER, eventually, free_port
from tests.integration.api_support import (
    AUTH,
    BASE_URL,
    TOKEN,
    build_app,
    enroll,
    enrollment,
    http_client,
    new_patient_id,
    wait_for_orders,
)
from workflows.models import workflow_id_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_order_ids_cannot_be_guessed_from_the_patient_id(stack):
    patient = await enroll(stack.http)
    bundle = await wait_for_orders(stack.http, patient, {"order_mri", "order_dxa"})
    real = {e["resource"]["id"] for e in bundle["entry"]}
    orders = stack.book.list(patient_id=patient)
    # How ids were made before: the first 20 hex digits of sha256("vcf-pathway-<patient>/<action id>").
    guesses = {"ord-" + hashlib.sha256(f"{workflow_id_for(patient)}/{o.action_id}".encode()).hexdigest()[:20]
               for o in orders}
    assert len(guesses) == len(orders) >= 4 and not guesses & real
    for guess in guesses:
        assert (await stack.http.get(f"/v1/orders/{guess}")).status_code == 404
        assert (await stack.http.post(f"/v1/orders/{guess}/acknowledge")).status_code == 404
    assert {o.status for o in stack.book.list(patient_id=patient)} == {"active"}


async def test_a_json_object_with_a_key_given_twice_is_refused(stack):
    patient = new_patient_id()
    twice = f'{{"id": "{new_patient_id()}", "id": "{patient}", "fracture_level": "L2", "height_loss_pct": 25, ' \
            '"pain_nrs": 8}'

    r = await stack.http.post("/v1/patients", content=twice, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"] == ["id: a key given more than once in one JSON object"]
    assert (await stack.http.get(f"/v1/patients/{patient}")).status_code == 404  # neither id was enrolled
    nested = ('{"resourceType": "Observation", "status": "final", "valueInteger": 3, "code": {"coding": [{"system":'
              ' "http://loinc.org", "code": "72514-3"}]},'
              ' "subject": {"reference": "Patient/a", "reference": "Patient/b"}}')
    r = await stack.http.post("/v1/fhir/Observation", content=nested, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 422 and r.json()["detail"] == ["reference: a key given more than once in one JSON object"]
    r = await stack.http.post("/v1/patients", content='{"<b>x</b>": 1, "<b>x</b>": 2}',
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"] == ["body: a key given more than once in one JSON object"]


async def test_two_authorization_headers_are_a_400(stack):
    headers = [("Authorization", AUTH["Authorization"]), ("Authorization", "Bearer someone-else")]
    async with http_client(stack.app, authenticated=False) as anonymous:
        for method, path in (("GET", "/v1/orders"), ("POST", "/v1/patients")):
            r = await anonymous.request(method, path, headers=headers, json={})
            assert r.status_code == 400, r.text
            assert r.json() == {"error": "bad request",
                                "detail": ["Authorization: given more than once; send one header"]}
        spec = (await anonymous.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert ("400" in operation["responses"]) == ("401" in operation["responses"]), path


MARKER = "Jane Roe 1961-04-02 <script>"


@pytest.mark.parametrize("path, body", [
    ("/v1/patients", {"id": "pt-echo", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8, MARKER: 1}),
    ("/v1/patients", {"id": MARKER, "fracture_level": MARKER, "height_loss_pct": MARKER, "pain_nrs": [MARKER]}),
    ("/v1/patients/{patient}/events", {"type": "pain", "nrs": 3, MARKER: MARKER}),
    ("/v1/patients/{patient}/events", {"type": MARKER, "observed_at": MARKER}),
    ("/v1/patients/{patient}/events", {"type": "mri", "etiology": MARKER, "event_id": 5}),
    ("/v1/fhir/Observation", {"resourceType": "Observation", "status": "final", "valueInteger": 3, MARKER: 1,
                              "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3", MARKER: 2}]},
                              "subject": {"reference": "Patient/{patient}"}, "note": [{"text": 5, MARKER: 3}]}),
    ("/v1/fhir/Observation", {"resourceType": "Observation", "status": MARKER, "valueInteger": MARKER,
                              "code": {"coding": [{"system": MARKER, "code": MARKER}]},
                              "subject": {"reference": MARKER}, "effectiveDateTime": MARKER}),
    ("/v1/orders/ord-nope/acknowledge", {"reason": 5, MARKER: MARKER}),
])
async def test_errors_never_repeat_what_was_sent(stack, echo_patient, path, body):
    text = json.dumps(body).replace("{patient}", echo_patient)
    r = await stack.http.post(path.replace("{patient}", echo_patient), content=text,
                              headers={"Content-Type": "application/json"})
    assert r.status_code in (404, 422), r.text
    assert "Jane" not in r.text and "script" not in r.text, r.text
    if MARKER in json.dumps(list(body)):  # an unknown key that is not a plain name: said so, unnamed
        assert any(line.endswith(": an unknown field") for line in r.json()["detail"]) or r.status_code == 404


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def echo_patient(stack):
    return await enroll(stack.http)


async def test_an_id_differing_from_an_enrolled_one_only_by_case_is_refused(stack):
    patient = await enroll(stack.http, f"pt-Case-{uuid.uuid4().hex[:8]}")
    for other in (patient.lower(), patient.upper(), patient.swapcase()):
        r = await stack.http.post("/v1/patients", json=enrollment(other))
        assert r.status_code == 422, r.text
        [line] = r.json()["detail"]
        assert line.startswith("id: differs only by letter case") and patient not in line
        assert (await stack.http.get(f"/v1/patients/{other}")).status_code == 404
    assert (await stack.http.post("/v1/patients", json=enrollment(patient))).status_code == 200  # itself: as before


@pytest.mark.parametrize("dots", [".", ".."])
async def test_ids_a_url_normaliser_would_change_are_refused_and_reach_no_patient(stack, dots):
    r = await stack.http.post("/v1/patients", json=enrollment(dots))
    assert r.status_code == 422 and r.json()["detail"][0].startswith("id: expected"), r.text
    longer = f"{dots}x{uuid.uuid4().hex[:8]}"  # only those two: dots that start a longer id are plain text
    assert (await stack.http.post("/v1/patients", json=enrollment(longer))).status_code == 201
    encoded = dots.replace(".", "%2E")  # as a path segment that a client library does not resolve away
    for path in (f"/v1/patients/{encoded}", f"/v1/patients/{encoded}/timeline", f"/v1/patients/{encoded}/CarePlan"):
        r = await stack.http.get(path)
        assert r.status_code == 404 and r.json()["error"] == "unknown patient", (path, r.text)


PAIN = {"resourceType": "Observation", "status": "final", "valueInteger": 4,
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}}
DXA = {"resourceType": "Observation", "status": "final", "valueQuantity": {"value": -2.7},
       "code": {"coding": [{"system": "http://loinc.org", "code": "38267-1"}]}}


@pytest.mark.parametrize("base, change, element", [
    (PAIN, {"effectiveDateTime": "2026"}, "effectiveDateTime"),  # a year alone once landed on 1970
    (PAIN, {"effectiveDateTime": "2026-01"}, "effectiveDateTime"),
    (PAIN, {"effectiveDateTime": "2026-01-05"}, "effectiveDateTime"),
    (PAIN, {"effectiveDateTime": "2026-01-05T09:00:00"}, "effectiveDateTime"),  # a time needs its zone
    (PAIN, {"effectiveDateTime": "2026-01-05T09:00Z"}, "effectiveDateTime"),
    (PAIN, {"modifierExtension": [{"url": "http://example.org/not-really", "valueBoolean": True}]},
     "modifierExtension"),
    (PAIN, {"dataAbsentReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                             "code": "asked-declined"}]}}, "dataAbsentReason"),
    (DXA, {"valueQuantity": {"value": -2.7, "comparator": "<"}}, "valueQuantity.comparator"),
    (DXA, {"valueQuantity": {"value": -2.7, "unit": "g/cm2"}}, "valueQuantity.unit"),
    (DXA, {"valueQuantity": {"value": -2.7, "unit": "{T-score}", "system": "http://unitsofmeasure.org",
                             "code": "g/cm2"}}, "valueQuantity.code"),
    (PAIN, {"subject": {"reference": "Patient/{patient}\n"}}, "subject.reference"),
    (PAIN, {"subject": {"reference": " Patient/{patient}"}}, "subject.reference"),
    (PAIN, {"subject": {"reference": "Patient/{patient}/_history/1"}}, "subject.reference"),
    (PAIN, {"subject": {"reference": "Patient/{patient}", "identifier": {"value": "pt-someone-else"}}},
     "subject.identifier"),
])
async def test_fhir_input_is_read_strictly(stack, echo_patient, base, change, element):
    body = json.loads(json.dumps({**base, "subject": {"reference": "Patient/{patient}"}, **change})
                      .replace("{patient}", echo_patient))
    r = await stack.http.post("/v1/fhir/Observation", json=body)
    assert r.status_code == 422, r.text
    assert any(line.startswith(f"{element}:") for line in r.json()["detail"]), r.json()


async def test_a_result_without_its_value_names_the_value_and_the_absent_reason(stack, echo_patient):
    body = {k: v for k, v in PAIN.items() if k != "valueInteger"} | {
        "subject": {"reference": f"Patient/{echo_patient}"}, "dataAbsentReason": {"text": "asked, declined"}}
    r = await stack.http.post("/v1/fhir/Observation", json=body)
    assert r.status_code == 422
    assert [line.split(":")[0] for line in r.json()["detail"]] == ["valueInteger", "dataAbsentReason"]


async def test_a_t_score_in_its_own_unit_is_taken(stack, echo_patient):
    quantity = {"value": -2.7, "unit": "{T-score}", "system": "http://unitsofmeasure.org", "code": "{T-score}"}
    body = {**DXA, "id": f"dxa-{uuid.uuid4().hex[:8]}", "valueQuantity": quantity,
            "subject": {"reference": f"Patient/{echo_patient}"}}
    assert (await stack.http.post("/v1/fhir/Observation", json=body)).status_code == 202


async def test_links_are_built_from_the_configured_base_url_never_the_host_header(stack):
    patient = await enroll(stack.http)
    await wait_for_orders(stack.http, patient, {"order_mri", "order_dxa"})
    for forged in ({"Host": "evil.example"}, {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
                                              "Forwarded": "host=evil.example;proto=https"}):
        bundle = (await stack.http.get("/v1/orders", params={"patient": patient, "_count": 2}, headers=forged)).json()
        urls = [link["url"] for link in bundle["link"]] + [e["fullUrl"] for e in bundle["entry"]]
        assert {link["relation"] for link in bundle["link"]} == {"self", "next"}
        assert urls and all(u.startswith(BASE_URL) for u in urls), urls
        plans = (await stack.http.get("/v1/fhir/PlanDefinition", headers=forged)).json()
        assert all(e["fullUrl"].startswith(BASE_URL) for e in plans["entry"])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_nothing_from_outside(stack, page):
    async with http_client(stack.app, authenticated=False) as anonymous:
        html = await anonymous.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text)
        assert any(u.endswith(".js") for u in urls), urls
        for url in urls:  # every script, stylesheet and icon is the API's own
            assert url.startswith("/") and not url.startswith("//"), url
            asset = await anonymous.get(url)
            assert asset.status_code == 200 and len(asset.content) > 100, url
        assert "http://" not in html.text and "https://" not in html.text  # no web fonts, no validator badge
        spec_url = re.search(r"""(?:url: |spec-url=)["']([^"']+)["']""", html.text).group(1)
        assert spec_url == "/openapi.json"


class _ListingSpy(OrderBook):
    """The real order book, noting how the listing reads it."""

    def __init__(self, path):
        super().__init__(path)
        self.listed: list[int] = []
        self.page_limits: list[int] = []

    def list(self, **filters):
        rows = super().list(**filters)
        self.listed.append(len(rows))
        return rows

    def page(self, **query):
        self.page_limits.append(query["limit"])
        return super().page(**query)


async def test_order_bundles_are_paged_in_the_database_with_a_capped_page_size(dev_env, tmp_path):
    book = _ListingSpy(tmp_path / "orders.db")
    patient = new_patient_id()
    for i in range(250):
        book.place(idempotency_key=f"{workflow_id_for(patient)}/a{i}", patient_id=patient,
                   workflow_id=workflow_id_for(patient), action_id=f"a{i}", kind="order_dxa", resource="ServiceRequest",
                   priority="routine", day=i // 3, title="DXA", rationale="r", citation="Guideline: test", details={},
                   codes=[])
    async with http_client(build_app(dev_env, book, "unused")) as http:
        for too_much in ({"_count": 1000}, {"_count": 101}, {"_offset": 100000}, {"_offset": 1001}):
            r = await http.get("/v1/orders", params=too_much)
            assert r.status_code == 422 and r.json()["detail"][0].startswith("query._"), r.text
        seen, url, params = [], "/v1/orders", {"patient": patient, "_count": 100}
        while url:
            page = (await http.get(url, params=params)).json()
            assert page["total"] == 250 and len(page["entry"]) <= 100
            seen += [e["resource"]["id"] for e in page["entry"]]
            url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
            params = None
            assert url is None or "_cursor=" in url
        assert seen == [o.id for o in OrderBook(book.path).list(patient_id=patient)]  # each once, in order
        skipped = (await http.get("/v1/orders", params={"patient": patient, "_count": 10, "_offset": 240})).json()
        assert [e["resource"]["id"] for e in skipped["entry"]] == seen[240:]
        spec = (await http.get("/openapi.json")).json()
    # Never the whole match: a page's rows, and one more to know whether another page follows.
    assert book.listed == [] and set(book.page_limits) <= {101, 11}
    params = {p["name"]: p["schema"] for p in spec["paths"]["/v1/orders"]["get"]["parameters"]}
    assert params["_count"]["maximum"] == 100 and params["_offset"]["maximum"] == 1000
    assert "pattern" in params["_cursor"]


async def test_readyz_says_whether_the_api_can_serve(stack, tmp_path):
    async with http_client(stack.app, authenticated=False) as anonymous:
        # Each check has 2 s: on a loaded machine one may miss it for a moment (then 503 is right).
        async def ready():
            r = await anonymous.get("/readyz")
            return r if r.status_code == 200 else None
        r = await eventually(ready, timeout=15)
        assert r.json() == {"ready": True, "in_flight": 0, "max_in_flight": 32}, r.text
    # The workflow service gone, and the database unreadable: 503, naming each.
    lost = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, data_converter=TEST_CONVERTER)
    book = OrderBook(tmp_path / "orders.db")
    app = create_app(client=lost, order_book=book, tokens={TOKEN})
    for suffix in ("", "-wal", "-shm"):
        Path(f"{book.path}{suffix}").unlink(missing_ok=True)
    book.path.mkdir()  # where the database file was: cannot be opened
    async with http_client(app, authenticated=False) as anonymous:
        r = await anonymous.get("/readyz")
    assert r.status_code == 503 and r.json()["error"] == "not ready", r.text
    assert [line.split(":")[0] for line in r.json()["detail"]] == ["database", "temporal"]
