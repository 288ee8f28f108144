"""One router per resource: health, patients, events, FHIR, orders (wired by ``api.app``)."""
