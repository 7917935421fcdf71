"""What the OpenAPI schema says about errors, so that it lists every answer an operation gives.

Errors are JSON everywhere under ``/api/`` (``config.exceptions``): ``{"detail": "…"}``,
or for invalid input one message list per field. ``error_responses`` adds the answers
every operation of a kind can give — 400 for input, 403 signed out, 404 for an unknown
id, 413 for a body over the limit, 429 when throttled — unless the view documented its
own.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from config.token_routes import TOKEN_PARAMETER


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


FIELD_ERRORS = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description='Invalid input: a list of messages per field, e.g. `{"email": ["Enter a valid email address."]}`; '
    'nested objects and lists name the item (`{"comments": {"management": ["…"]}}`), '
    "and errors not tied to a field are under `non_field_errors` or `detail`.",
)


def _detail(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": DETAIL_REF}}}}


DETAIL_REF = "#/components/schemas/Detail"
FIELD_ERRORS_SCHEMA = {
    "description": FIELD_ERRORS.description,
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": {}}}},
}


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """``POSTPROCESSING_HOOKS``: the error answers each operation can give, where not documented."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "Detail", {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
    )
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            in_path = [parameter["name"] for parameter in parameters if parameter.get("in") == "path"]
            public_operation = operation.get("security") == [] or not operation.get("security")
            wanted: dict[str, dict[str, Any]] = {}
            if method != "get" or any(parameter.get("in") == "query" for parameter in parameters):
                wanted["400"] = FIELD_ERRORS_SCHEMA
            if not public_operation:
                wanted["403"] = _detail("Not signed in, or not allowed to do this.")
            if in_path:
                wanted["404"] = _detail("No such object, or not yours: both answer alike.")
            if "requestBody" in operation:
                wanted["413"] = _detail("The request body is larger than the limit.")
            if TOKEN_PARAMETER in in_path:
                wanted["429"] = _detail("Too many links that lead nowhere from this address; see `Retry-After`.")
            for code, response in wanted.items():
                responses.setdefault(code, response)
            responses.setdefault("405", _detail("This method is not allowed here."))
    return result
