"""A small client of the VCF HTTP API for the ``vcf`` command line.

Configuration (:class:`worker.settings.Settings`): ``VCF_API_URL`` (default
http://127.0.0.1:8000) and the bearer token from ``VCF_API_TOKEN`` or the file
``$VCF_DATA_DIR/api-token`` (default .data/api-token).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from worker.settings import Settings

# The API's own "not found" answers; any other 404 (a wrong base URL, another server) is not one.
UNKNOWN_RESOURCE_ERRORS = ("unknown patient", "unknown order")


class ApiFailure(Exception):
    """The API answered with an error, or could not be reached (``status`` None)."""

    def __init__(self, status: int | None, error: str, detail: list[str] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail or []

    @property
    def unknown_resource(self) -> bool:
        """Whether the API said the patient or order does not exist."""
        return self.status == 404 and self.error in UNKNOWN_RESOURCE_ERRORS


def default_token(settings: Settings | None = None) -> str | None:
    """``VCF_API_TOKEN``, else the token file of the local data directory."""
    settings = settings or Settings()
    if settings.api_token:
        return settings.api_token.strip()
    path = settings.token_path
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


class ApiClient:
    """Synchronous calls to the API; every failure is an :class:`ApiFailure`."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0):
        import httpx  # here, not with the module: ``vcf simulate`` and ``vcf cohort`` never call the API

        self.url = (url or Settings().api_url).rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        except httpx.InvalidURL as exc:
            raise ApiFailure(None, f"invalid API URL {self.url!r} ({exc})") from None

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Send one request; return (status, JSON body) for a 2xx answer. ``path`` is relative to
        the API, or an absolute URL of the API's own origin (a link it answered with): the token
        goes to no other origin, whatever a link says."""
        if (urlsplit(path).scheme or path.startswith("//")) and _origin(path) != _origin(self.url):
            raise ApiFailure(None, f"refusing to follow a link to another origin ({_origin(path)}): the API "
                                   f"is {_origin(self.url)}, and the token is sent there only")
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ApiFailure(None, f"cannot reach the API at {self.url} ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            return response.status_code, body
        if isinstance(body, dict) and "error" in body:
            raise ApiFailure(response.status_code, str(body["error"]), [str(d) for d in body.get("detail") or []])
        raise ApiFailure(response.status_code, f"HTTP {response.status_code}")

    def enroll(self, enrollment: dict[str, Any]) -> tuple[int, Any]:
        """POST /v1/patients."""
        return self.request("POST", "/v1/patients", json=enrollment)

    def event(self, patient_id: str, event: dict[str, Any]) -> tuple[int, Any]:
        """POST /v1/patients/{id}/events."""
        return self.request("POST", f"/v1/patients/{_seg(patient_id)}/events", json=event)

    def state(self, patient_id: str) -> Any:
        """GET /v1/patients/{id}."""
        return self.request("GET", f"/v1/patients/{_seg(patient_id)}")[1]

    def timeline(self, patient_id: str) -> Any:
        """GET /v1/patients/{id}/timeline."""
        return self.request("GET", f"/v1/patients/{_seg(patient_id)}/timeline")[1]

    def orders(self, patient_id: str | None = None, status: str | None = None, page_size: int | None = None) -> Any:
        """GET /v1/orders, every page (one FHIR searchset Bundle), ``page_size`` orders a page."""
        params: dict[str, Any] = {k: v for k, v in (("patient", patient_id), ("status", status)) if v}
        if page_size:
            params["_count"] = page_size
        bundle = self.request("GET", "/v1/orders", params=params)[1]
        # Follow the paging links: one Bundle of every match.
        while isinstance(bundle, dict) and (url := _next_link(bundle)):
            page = self.request("GET", url)[1]
            bundle["entry"] = bundle.get("entry", []) + page.get("entry", [])
            bundle["link"] = page.get("link", [])
        return bundle


def _origin(url: str) -> str:
    """``scheme://host:port`` of a URL (the default port spelled out), for comparing origins."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return "an invalid URL"
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def _next_link(bundle: dict[str, Any]) -> str | None:
    return next((link.get("url") for link in bundle.get("link") or [] if link.get("relation") == "next"), None)


def _seg(value: str) -> str:
    # A path segment: a stray '/' or '?' in an id must not reach another route.
    return quote(value, safe="")
