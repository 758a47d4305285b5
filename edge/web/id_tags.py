"""The id-tag list (authorization): GET/PUT/DELETE /api/id-tags/{idTag}, GET /api/id-tags."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from edge.id_tags import MAX_ID_TAG_LENGTH, AuthorizationStatus, IdTag
from edge.times import parse_time
from edge.web.common import (
    ApiError,
    Json,
    json_body,
    json_response,
    reject_unknown_fields,
    services,
)

__all__ = ["add_routes"]


async def list_id_tags(request: web.Request) -> web.Response:
    return json_response([t.to_json() for t in services(request).id_tags])


async def get_id_tag(request: web.Request) -> web.Response:
    tag = services(request).id_tags.get(request.match_info["id_tag"])
    if tag is None:
        raise ApiError(404, "unknown_id_tag", "no such id tag")
    return json_response(tag.to_json())


def _parse_id_tag(id_tag: str, body: Json) -> IdTag:
    if not 0 < len(id_tag) <= MAX_ID_TAG_LENGTH:
        raise ApiError(400, "invalid_request", "idTag must be 1 to 20 characters (CiString20)")
    reject_unknown_fields(body, {"status", "expiryDate", "parentIdTag", "idTag"})
    try:
        status = AuthorizationStatus(body.get("status", "Accepted"))
    except ValueError:
        raise ApiError(
            400, "invalid_request", "status must be Accepted, Blocked, Expired or Invalid"
        ) from None
    if status is AuthorizationStatus.CONCURRENT_TX:
        raise ApiError(400, "invalid_request", "ConcurrentTx is not a stored status")
    expiry: datetime | None = None
    raw_expiry = body.get("expiryDate")
    if raw_expiry is not None:
        if not isinstance(raw_expiry, str):
            raise ApiError(400, "invalid_request", "expiryDate must be an ISO 8601 string")
        try:
            expiry = parse_time(raw_expiry)
        except ValueError:
            raise ApiError(400, "invalid_request", "expiryDate is not ISO 8601") from None
    parent = body.get("parentIdTag")
    if parent is not None and (not isinstance(parent, str) or not 0 < len(parent) <= 20):
        raise ApiError(400, "invalid_request", "parentIdTag must be 1 to 20 characters")
    return IdTag(id_tag=id_tag, status=status, expiry_date=expiry, parent_id_tag=parent)


async def put_id_tag(request: web.Request) -> web.Response:
    svc = services(request)
    id_tag = request.match_info["id_tag"]
    tag = _parse_id_tag(id_tag, await json_body(request, allow_empty=True))
    existed = svc.id_tags.get(id_tag) is not None
    svc.id_tags.put(tag)
    await svc.id_tags.persist()
    svc.record(None, "IdTagChanged", tag.to_json())
    return json_response(tag.to_json(), 200 if existed else 201)


async def delete_id_tag(request: web.Request) -> web.Response:
    svc = services(request)
    id_tag = request.match_info["id_tag"]
    if not svc.id_tags.delete(id_tag):
        raise ApiError(404, "unknown_id_tag", "no such id tag")
    await svc.id_tags.persist()
    svc.record(None, "IdTagDeleted", {"idTag": id_tag})
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/id-tags", list_id_tags)
    router.add_get("/api/id-tags/{id_tag}", get_id_tag)
    router.add_put("/api/id-tags/{id_tag}", put_id_tag)
    router.add_delete("/api/id-tags/{id_tag}", delete_id_tag)
