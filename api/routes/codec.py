"""``/codec``: the payload codec over HTTP, for the Temporal Web UI (and ``temporal --codec-endpoint``).

Temporal's codec-server protocol: ``POST /codec/decode`` and ``POST /codec/encode`` take and
answer ``{"payloads": [{"metadata": {"<name>": "<base64>"}, "data": "<base64>"}]}`` (the
``Payloads`` message in protobuf JSON). Decoding turns the ciphertext the server stores back into
the payloads the workers wrote, so that the UI shows inputs, signals, results and named timers;
payloads that are not encrypted come back as they are. Encoding encrypts with the current key
(the UI encodes what an operator sends, such as a signal's input).

The namespace is the ``X-Namespace`` header (the UI sends it); this API serves its client's
namespace only. Who may call: in development (``make run``, ``VCF_DEVELOPMENT``) callers on
loopback need no token, since the dev server's UI cannot send one; otherwise the API's bearer
token, key or JWT, holding ``pathways:read``, as the /v1 reads need (a UI behind single sign-on
forwards the user's token). Browsers
may call only from the UI's origins (:mod:`api.cors`).
"""

from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import ValidationError
from pydantic.json_schema import SkipJsonSchema
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from api.auth import Caller
from api.deps import BearerCredentials, authenticated_caller
from api.errors import ApiError, field_errors
from api.models import CodecPayload, CodecPayloads
from api.openapi import REF, errors, request_body
from security.codec import PayloadDecryptionError

MAX_CODEC_BODY = 4 * 1024 * 1024  # a history event's payloads; the server's own limit is 2 MiB a payload
DECODE_EXAMPLE = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJucnMiOjZ9"}]}


@dataclass(frozen=True)
class CodecService:
    """What the codec routes need: the codec, the namespace it serves, and whether loopback
    callers may use it without a token (development only)."""

    codec: PayloadCodec
    namespace: str
    open_on_loopback: bool = False


def _service(request: Request) -> CodecService:
    return request.app.state.codec


def _on_loopback(request: Request) -> bool:
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:  # not an IP address (a test client's made-up host)
        return False


async def codec_caller(request: Request, credentials: BearerCredentials) -> Caller | None:
    """The caller; in development, no one need be named on loopback; otherwise 401 without a
    valid bearer token, and 403 without ``pathways:read``."""
    if _service(request).open_on_loopback and _on_loopback(request):
        return None
    caller = await authenticated_caller(request, credentials)
    # Decoding reads every patient's payloads: a credential for orders or the audit only may not.
    caller.require("pathways:read")
    return caller


async def served_namespace(request: Request, x_namespace: Annotated[
        str | SkipJsonSchema[None], Header(alias="X-Namespace", description="The payloads' namespace "
                                           "(sent by the Web UI); only the API's own namespace is served")] = None,
                           ) -> CodecService:
    """The codec, if the request names no namespace or the one served; 404 otherwise."""
    service = _service(request)
    if x_namespace is not None and x_namespace != service.namespace:
        raise ApiError(404, "namespace not served", [f"X-Namespace: this codec serves {service.namespace!r} only"])
    return service


router = APIRouter(prefix="/codec", tags=["codec"], dependencies=[Depends(codec_caller)])
Served = Annotated[CodecService, Depends(served_namespace)]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(
        model="ErrorBody")}}}}


RESPONSES: dict[int | str, dict[str, Any]] = {
    **errors(401),
    403: _error("the credential lacks the scope `pathways:read`, or the browser origin is not the Web UI's"),
    404: _error("the X-Namespace header names a namespace this API does not serve"),
    413: _error(f"body larger than {MAX_CODEC_BODY // (1024 * 1024)} MiB"),
    422: _error("not the protocol's shape (`detail` names each field and why), or, decoding, an encrypted "
                "payload the key ring cannot decrypt (`detail` names the payload and its key id)"),
}


async def _payloads(request: Request) -> list[Payload]:
    """The body's payloads; 413 past the cap, 422 naming the field if it is not the protocol's shape."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_CODEC_BODY:
        raise ApiError(413, "request body too large", [f"body: at most {MAX_CODEC_BODY} bytes"])
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CODEC_BODY:
            raise ApiError(413, "request body too large", [f"body: at most {MAX_CODEC_BODY} bytes"])
        chunks.append(chunk)
    try:
        body = CodecPayloads.model_validate(json.loads(b"".join(chunks)))
    except ValidationError as exc:
        raise ApiError(422, "invalid request", field_errors(exc.errors())) from None
    except (ValueError, RecursionError):  # not JSON, or not UTF-8
        raise ApiError(422, "invalid request", ['body: expected JSON {"payloads": [...]}']) from None
    return [Payload(metadata={k: _bytes(v) for k, v in p.metadata.items()}, data=_bytes(p.data))
            for p in body.payloads]


def _bytes(text: str) -> bytes:
    # Protobuf JSON takes standard or URL-safe base64, padded or not (the model's pattern checked it).
    return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))


def _answer(payloads: list[Payload]) -> CodecPayloads:
    return CodecPayloads(payloads=[
        CodecPayload(metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                     data=base64.b64encode(p.data).decode()) for p in payloads])


@router.post("/decode", operation_id="codec_decode", summary="Decrypt payloads (Temporal codec server)",
             response_description="The payloads as the workers wrote them; unencrypted ones as they came",
             responses=RESPONSES, openapi_extra=request_body("CodecPayloads", DECODE_EXAMPLE))
async def decode(request: Request, service: Served) -> CodecPayloads:
    """Decrypts each ``binary/encrypted`` payload with the key it names; 422 naming the payload
    and its key id if that key is not in the key ring (or does not decrypt it). Needs the bearer
    token, except in development from loopback; browsers only from the Web UI's origins."""
    decoded = []
    for i, payload in enumerate(await _payloads(request)):
        try:
            decoded.extend(await service.codec.decode([payload]))
        except PayloadDecryptionError as exc:
            raise ApiError(422, "cannot decrypt", [f"payloads[{i}]: {exc}"]) from None
    return _answer(decoded)


@router.post("/encode", operation_id="codec_encode", summary="Encrypt payloads (Temporal codec server)",
             response_description="The payloads encrypted with the current key", responses=RESPONSES,
             openapi_extra=request_body("CodecPayloads", DECODE_EXAMPLE))
async def encode(request: Request, service: Served) -> CodecPayloads:
    """Encrypts each payload with the key ring's current key (its id travels in the metadata).
    Needs the bearer token, except in development from loopback; browsers only from the Web UI's
    origins."""
    return _answer(await service.codec.encode(await _payloads(request)))
