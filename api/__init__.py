"""The HTTP API of the VCF pathway: enrollment, events, FHIR in and out, over Temporal."""
