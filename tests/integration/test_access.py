"""Scoped API keys (``vcf token``) and the audit trail, over the real dev server and worker."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from activities.database import IntegrityError
from api.keys import read_keys
from cli.main import parser
from tests.helpers import eventually
from tests.integration.api_support import AUTH, BASE_URL, build_app, enroll
from tests.integration.conftest import BACKENDS

pytestmark = pytest.mark.asyncio(loop_scope="session")
STACK_BACKENDS = BACKENDS  # the registry and the audit trail on SQLite, then on PostgreSQL


def vcf_token(data_dir: Path, monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    """Run ``vcf token ...`` in-process over ``data_dir``; its exit code and stdout."""
    monkeypatch.setenv("VCF_DATA_DIR", str(data_dir))
    capsys.readouterr()
    args = parser().parse_args(["token", *argv])
    code = args.func(args)
    return code, capsys.readouterr().out.strip()


def new_key(data_dir: Path, monkeypatch, capsys, name: str, *scopes: str) -> str:
    code, out = vcf_token(data_dir, monkeypatch, capsys, "create", "--name", name,
                          *[a for s in scopes for a in ("--scope", s)])
    assert code == 0
    return out


def keyed(app, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL.rstrip("/"),
                             headers={"Authorization": f"Bearer {key}"})


def forbidden(r: httpx.Response, scope: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json() == {"error": "forbidden", "detail": [f"scope: {scope} required"]}


async def test_token_create_stores_only_a_hash(tmp_path, monkeypatch, capsys):
    key = new_key(tmp_path, monkeypatch, capsys, "reader", "pathways:read")
    path = tmp_path / "api-keys.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key not in path.read_text()
    [stored] = read_keys(path)
    assert (stored.name, stored.scopes, stored.revoked_at) == ("reader", ("pathways:read",), None)
    assert len(stored.sha256) == 64
    code, listing = vcf_token(tmp_path, monkeypatch, capsys, "list")
    assert code == 0 and listing.startswith("reader\tpathways:read") and "active" in listing
    assert vcf_token(tmp_path, monkeypatch, capsys, "create", "--name", "reader", "--scope", "audit:read")[0] == 2
    assert vcf_token(tmp_path, monkeypatch, capsys, "revoke", "nobody")[0] == 3
    # the order book's own name: a Task moved under it would read as a result recorded
    assert vcf_token(tmp_path, monkeypatch, capsys, "create", "--name", "pathway", "--scope", "orders:write")[0] == 2


async def test_scopes_revocation_and_audit(stack, tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "data"
    reader = new_key(data_dir, monkeypatch, capsys, "reader", "pathways:read")
    writer = new_key(data_dir, monkeypatch, capsys, "writer", "pathways:write")
    clinician = new_key(data_dir, monkeypatch, capsys, "dr-key", "decisions:write")
    acker = new_key(data_dir, monkeypatch, capsys, "acker", "orders:write", "pathways:read")
    auditor = new_key(data_dir, monkeypatch, capsys, "auditor", "audit:read")
    app = build_app(stack.env, stack.book, stack.task_queue, keys_file=data_dir / "api-keys.json")
    async with keyed(app, reader) as r_http, keyed(app, writer) as w_http, keyed(app, clinician) as c_http, \
            keyed(app, acker) as a_http, keyed(app, auditor) as audit_http, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL.rstrip("/"),
                              headers=AUTH) as static:
        # pathways:write enrolls and sends events; it reads nothing, decides nothing
        patient = await enroll(w_http)
        r = await w_http.post(f"/v1/patients/{patient}/events", json={"type": "pain", "nrs": 5, "event_id": "p-1"})
        assert r.status_code == 202, r.text
        forbidden(await w_http.get(f"/v1/patients/{patient}"), "pathways:read")
        decision = {"type": "clinician", "decision": "pause", "reason": "family meeting", "author": "dr-1",
                    "event_id": "c-1"}
        forbidden(await w_http.post(f"/v1/patients/{patient}/events", json=decision), "decisions:write")
        # pathways:read reads the patient, and is refused when it posts an event
        assert (await r_http.get(f"/v1/patients/{patient}")).status_code == 200
        assert (await r_http.get(f"/v1/patients/{patient}/CarePlan")).status_code == 200
        # holding neither scope an event may need, it is told both: before its body is read, either may be
        for event in ({"type": "pain", "nrs": 4}, decision):
            forbidden(await r_http.post(f"/v1/patients/{patient}/events", json=event),
                      "pathways:write or decisions:write")
        forbidden(await r_http.post("/v1/patients", json={"id": "pt-x"}), "pathways:write")
        forbidden(await r_http.get("/v1/audit", params={"patient": patient}), "audit:read")
        # decisions:write sends a clinician event, and only that
        r = await c_http.post(f"/v1/patients/{patient}/events", json=decision)
        assert r.status_code == 202, r.text
        forbidden(await c_http.post(f"/v1/patients/{patient}/events", json={"type": "pain", "nrs": 4}),
                  "pathways:write")
        # orders:write acknowledges; pathways:read alone does not
        async def an_active_order():
            bundle = (await static.get("/v1/orders", params={"patient": patient, "status": "active"})).json()
            return bundle.get("entry")
        order_id = (await eventually(an_active_order))[0]["resource"]["id"]
        forbidden(await r_http.post(f"/v1/orders/{order_id}/acknowledge", json={}), "orders:write")
        r = await a_http.post(f"/v1/orders/{order_id}/acknowledge", json={})
        assert r.status_code == 200, r.text
        # refused requests that name the patient are recorded too: a FHIR body refused whole, a scope
        # refused before the route looks anything up, a method the route has not
        pain_11 = {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{patient}"},
                   "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}, "valueInteger": 11}
        assert (await w_http.post("/v1/fhir/Observation", json=pain_11)).status_code == 422
        forbidden(await w_http.get("/v1/orders", params={"patient": patient}), "pathways:read")
        assert (await static.delete(f"/v1/patients/{patient}")).status_code == 405
        # a listing across patients is a read of each patient it shows
        async def listing_shows_the_patient() -> bool:
            url: str | None = "/v1/orders?_count=100"
            while url:
                page = (await r_http.get(url)).json()
                if any(e["resource"].get("subject", {}).get("reference") == f"Patient/{patient}"
                       for e in page.get("entry", [])):
                    return True
                url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
            return False
        assert await listing_shows_the_patient()
        # the sender of each event is kept with its event id claim
        assert stack.app.state.services.registry.submitted_by(patient, "p-1") == "writer"
        assert stack.app.state.services.registry.submitted_by(patient, "c-1") == "dr-key"

        # an order read under another type is refused (404), and recorded all the same: the order names the patient
        own_type = (await static.get(f"/v1/orders/{order_id}")).json()["resourceType"]
        other = next(t for t in ("ServiceRequest", "MedicationRequest", "CommunicationRequest") if t != own_type)
        assert (await r_http.get(f"/v1/fhir/{other}/{order_id}")).status_code == 404

        # the audit trail, as FHIR AuditEvents
        r = await audit_http.get("/v1/audit", params={"patient": patient})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+json")
        Bundle.model_validate(r.json())
        events = [AuditEvent.model_validate(e["resource"]) for e in r.json()["entry"]]
        seen = [(e.agent[0].who.display, e.entity[0].detail[0].valueString, e.action, e.outcomeDesc)
                for e in events]
        assert ("writer", "POST /v1/patients", "E", "HTTP 201") in seen
        assert ("writer", "POST /v1/patients/{patient_id}/events", "E", "HTTP 202") in seen
        assert ("writer", "GET /v1/patients/{patient_id}", "R", "HTTP 403") in seen
        assert ("reader", "GET /v1/patients/{patient_id}", "R", "HTTP 200") in seen
        assert ("reader", "GET /v1/patients/{patient_id}/CarePlan", "R", "HTTP 200") in seen
        assert ("reader", "GET /v1/fhir/{resource_type}/{resource_id}", "R", "HTTP 404") in seen
        assert ("dr-key", "POST /v1/patients/{patient_id}/events", "E", "HTTP 202") in seen
        assert ("acker", "POST /v1/orders/{order_id}/acknowledge", "E", "HTTP 200") in seen
        assert all(e.entity[0].what.reference == f"Patient/{patient}" for e in events)
        decided = [e for e in events if e.agent[0].who.display == "dr-key" and e.outcomeDesc == "HTTP 202"]
        assert [d.valueString for d in decided[0].entity[0].detail][1] == "c-1"
        # no clinical values in the trail
        text = json.dumps(r.json())
        assert "family meeting" not in text and "dr-1" not in text
        assert ("writer", "POST /v1/fhir/Observation", "E", "HTTP 422") in seen
        assert ("writer", "GET /v1/orders", "R", "HTTP 403") in seen
        assert ("reader", "GET /v1/orders", "R", "HTTP 200") in seen  # the listing across patients
        assert ("reader", "GET /v1/audit", "R", "HTTP 403") in seen
        assert ("token", "DELETE /v1/patients/{patient_id}", "E", "HTTP 405") in seen
        # the static token holds every scope; reading the trail is itself recorded
        r = await static.get("/v1/audit", params={"patient": patient})
        assert r.status_code == 200
        assert {"GET /v1/audit"} == {e["resource"]["entity"][0]["detail"][0]["valueString"] for e in r.json()["entry"]
                                     if e["resource"]["agent"][0]["who"]["display"] == "auditor"}

        # a revoked key is refused at once (401)
        code, _ = vcf_token(data_dir, monkeypatch, capsys, "revoke", "reader")
        assert code == 0
        r = await r_http.get(f"/v1/patients/{patient}")
        assert r.status_code == 401 and r.json()["detail"] == ["Authorization: unknown token"]


async def test_audit_table_is_append_only(stack):
    database = stack.book.database
    with database.transaction() as db:
        db.execute("INSERT INTO api_audit (recorded_at, credential, patient_id, method, route, action, status)"
                   " VALUES ('2026-01-01T00:00:00+00:00', 'x', 'pt-audit', 'GET', '/v1/x', 'read', 200)")
    for change in ("UPDATE api_audit SET status = 500 WHERE patient_id = 'pt-audit'",
                   "DELETE FROM api_audit WHERE patient_id = 'pt-audit'"):
        with pytest.raises(IntegrityError, match="append-only"), database.transaction() as db:
            db.execute(change)
