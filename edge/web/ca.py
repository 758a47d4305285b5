"""The site CA in the operator API (`edge.security.authority`).

GET  /api/ca                              the CA: subject, validity, fingerprint (never a key)
POST /api/ca                              create it now if absent (SignCertificate would)
GET  /api/ca/certificate                  its certificate chain, PEM (to install on chargers)
GET  /api/certificates[?chargerId=&status=&expiring=true]
                                          the register of issued certificates, newest first,
                                          each with expiresInDays and expiringSoon (30 days)
GET  /api/certificates/{serial}           one of them
POST /api/certificates/{serial}/revoke    {"reason"?}: into the CRL and the register
POST /api/chargers/{id}/certificate/renew ExtendedTriggerMessage(SignChargePointCertificate)
"""

from __future__ import annotations

from aiohttp import web

from edge.features import certificates
from edge.operations import NotFound, Origin
from edge.security.authority import CertificateAuthority, UnknownSerial, normalise_serial
from edge.security.ca import CaError
from edge.security.register import STATUSES
from edge.web.common import (
    ApiError,
    charger_or_404,
    json_body,
    json_response,
    operations,
    outcome_json,
    query_bool,
    reject_unknown_fields,
    services,
)

__all__ = ["add_routes"]


def authority(request: web.Request) -> CertificateAuthority:
    ca = services(request).certificates
    if ca is None:
        raise ApiError(503, "no_ca", "the site CA service is not running")
    return ca


async def get_ca(request: web.Request) -> web.Response:
    return json_response(authority(request).describe_ca())


async def create_ca(request: web.Request) -> web.Response:
    ca = authority(request)
    existed = ca.ca is not None
    try:
        await ca.authority()
    except (CaError, OSError) as err:
        raise ApiError(503, "ca_unusable", str(err)) from None
    return json_response(ca.describe_ca(), status=200 if existed else 201)


async def get_ca_certificate(request: web.Request) -> web.Response:
    site = authority(request).ca
    if site is None:
        raise ApiError(404, "no_ca", "no site CA yet: POST /api/ca or `edge-csms ca init`")
    return web.Response(
        text=site.chain_pem(),
        content_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="site-ca.pem"'},
    )


async def list_certificates(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_query", f"status must be one of {', '.join(STATUSES)}")
    entries = authority(request).entries_json(
        charger_id=request.query.get("chargerId"), status=status
    )
    if query_bool(request, "expiring"):
        entries = [e for e in entries if e["expiringSoon"]]
    return json_response(entries)


def _serial(request: web.Request) -> str:
    try:
        return normalise_serial(request.match_info["serial"])
    except ValueError:
        raise ApiError(400, "invalid_serial", "a serial number is hexadecimal") from None


async def get_certificate(request: web.Request) -> web.Response:
    ca = authority(request)
    ca.sync_revocations()
    entry = ca.register.get(_serial(request))
    if entry is None:
        raise NotFound("no such certificate in the register")
    return json_response(ca.entry_json(entry))


async def revoke_certificate(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=True)
    reject_unknown_fields(body, {"reason"})
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ApiError(400, "invalid_request", "reason must be a string")
    ca = authority(request)
    try:
        entry = await ca.revoke(_serial(request), reason)
    except UnknownSerial:
        raise NotFound("no such certificate in the register") from None
    except (CaError, OSError) as err:
        raise ApiError(503, "ca_unusable", str(err)) from None
    return json_response(ca.entry_json(entry))


async def renew_certificate(request: web.Request) -> web.Response:
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    outcome = await certificates.renew(operations(request), charger, Origin.OPERATOR)
    return json_response(outcome_json(outcome))


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/ca", get_ca)
    router.add_post("/api/ca", create_ca)
    router.add_get("/api/ca/certificate", get_ca_certificate)
    router.add_get("/api/certificates", list_certificates)
    router.add_get("/api/certificates/{serial}", get_certificate)
    router.add_post("/api/certificates/{serial}/revoke", revoke_certificate)
    router.add_post("/api/chargers/{charger_id}/certificate/renew", renew_certificate)
