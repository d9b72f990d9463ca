"""The OpenAPI 3.1 document of the server, built from the route table and the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ..models import Id
from ..rest.models import ErrorBody
from .routing import Operation

__all__ = ["HealthBody", "build_openapi"]

_REF_TEMPLATE = "#/components/schemas/{model}"

_APP_ID_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": r"^[^\x00-\x1f/\\\s]+$",
}

_ERROR_DESCRIPTIONS = {
    "400": "Invalid JSON, query parameter, path id or field; the reason names it",
    "401": "The Authorization header is missing or holds no valid credential",
    "403": "The operation is not allowed, for example a sender who is not a participant",
    "404": "The app, a user, the conversation or the message does not exist",
    "413": "The request body is over the server's size limit",
    "429": "The app sent too many requests; retry after Retry-After seconds",
    "503": "The database failed; retry later",
}


class HealthBody(BaseModel):
    """The body of a successful ``GET /health``."""

    status: Literal["ok"] = "ok"


def build_openapi(operations: Sequence[Operation], *, version: str) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of ``operations`` plus ``/health`` and ``/openapi.json``."""
    schemas, refs = _component_schemas(operations)
    paths: dict[str, dict[str, Any]] = {
        "/health": {
            "get": {
                "operationId": "getHealth",
                "summary": "Check that the server can reach its database",
                "security": [],
                "responses": {
                    "200": _json_response(
                        "The database answers", refs[(HealthBody, "serialization")]
                    ),
                    "503": _json_response(
                        "The database does not answer", refs[(ErrorBody, "serialization")]
                    ),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json_response("The document", {"type": "object"})},
            }
        },
    }
    for operation in operations:
        paths.setdefault(operation.full_path, {})[operation.method.lower()] = _operation(
            operation, refs
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "talkjs-components REST API",
            "version": version,
            "description": (
                "A REST API compatible with TalkJS REST API v1, served by talkjs-components. "
                'Errors have the body {"errorCode": ..., "reason": ...}.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The app's secret key, or an app token (HS256 JWT)",
                }
            },
        },
        "security": [{"bearerAuth": []}],
    }


_ModelKey = tuple[type[Any], JsonSchemaMode]


def _component_schemas(
    operations: Sequence[Operation],
) -> tuple[dict[str, Any], dict[_ModelKey, dict[str, Any]]]:
    """Return the component schemas and, per (model, mode), the schema that refers to it."""
    keys: list[_ModelKey] = [(ErrorBody, "serialization"), (HealthBody, "serialization")]
    for operation in operations:
        keys.append((operation.response, "serialization"))
        if operation.body is not None:
            keys.append((operation.body, "validation"))
    refs, definitions = models_json_schema(
        list(dict.fromkeys(keys)), by_alias=True, ref_template=_REF_TEMPLATE
    )
    return definitions.get("$defs", {}), dict(refs)


def _operation(operation: Operation, refs: dict[_ModelKey, dict[str, Any]]) -> dict[str, Any]:
    error_ref = refs[(ErrorBody, "serialization")]
    statuses = ["400", "401", "404", "429", "503"]
    if operation.forbidden:
        statuses.append("403")
    if operation.body is not None:
        statuses.append("413")
    responses: dict[str, Any] = {
        "200": _json_response("Success", refs[(operation.response, "serialization")])
    }
    for status in sorted(statuses):
        responses[status] = _json_response(_ERROR_DESCRIPTIONS[status], error_ref)
    responses["429"]["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait before the next request",
            "schema": {"type": "integer", "minimum": 1},
        }
    }
    document: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "parameters": _path_parameters(operation) + _query_parameters(operation),
        "responses": responses,
    }
    if operation.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
        }
    return document


def _path_parameters(operation: Operation) -> list[dict[str, Any]]:
    id_schema = TypeAdapter(Id).json_schema()
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _APP_ID_SCHEMA if name == "appId" else id_schema,
        }
        for name in re.findall(r"{(\w+)}", operation.full_path)
    ]


def _query_parameters(operation: Operation) -> list[dict[str, Any]]:
    if operation.query is None:
        return []
    schema = operation.query.model_json_schema(by_alias=True, mode="validation")
    required = set(schema.get("required", []))
    parameters = []
    for name, property_schema in schema["properties"].items():
        parameter_schema = _without_null(property_schema)
        parameter_schema.pop("title", None)
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": parameter_schema,
            }
        )
    return parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop the ``null`` choice of an optional field: an absent query parameter means it."""
    choices = schema.get("anyOf")
    if choices is None:
        return dict(schema)
    rest = [choice for choice in choices if choice.get("type") != "null"]
    result = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(rest) == 1:
        result.update(rest[0])
    else:
        result["anyOf"] = rest
    if "default" in result and result["default"] is None:
        del result["default"]
    return result


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
