"""The REST route table and the code every REST call runs before and after its handler.

Each :class:`Operation` describes one method and path: its handler, its
query and body models, its response model and whether it can return 403.
The Starlette routes and the OpenAPI document are both built from the same
table, so the document describes what the server does.

Every call runs these steps in this order: find the app (404), authenticate
(401), take a rate-limit token (429), parse the query and the body (400),
run the handler, and turn errors into JSON error responses. A 413 comes from
:class:`~talkjs_components.server.body_limit.BodySizeLimit` around it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ChatError
from ..models import Id
from ..rest.models import EmptyBody
from ..service import ChatService
from .authentication import AuthFailureLog, authenticate_request
from .body_limit import BodyTooLarge
from .errors import ApiError, from_chat_error, from_validation_error, internal_error
from .hosting import AppHost, HostedApp
from .rate_limit import RateLimiter

__all__ = [
    "API_PREFIX",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Operation",
    "PageQuery",
    "RestContext",
    "RestServer",
    "UserConversationsQuery",
    "domain_model",
]

API_PREFIX = "/v1/{appId}"
"""The path prefix of every REST route; ``appId`` picks the app."""

DEFAULT_PAGE_SIZE = 10
"""Items per page of a list endpoint when ``limit`` is not given, as in TalkJS."""

MAX_PAGE_SIZE = 100
"""Largest ``limit`` a list endpoint accepts, as in TalkJS."""

_M = TypeVar("_M", bound=BaseModel)


class _QueryModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class PageQuery(_QueryModel):
    """The paging parameters of a list endpoint.

    ``startingAfter`` is the id of the last item of the previous page.
    """

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE
    starting_after: Id | None = None


class UserConversationsQuery(PageQuery):
    """The parameters of ``GET /users/{userId}/conversations``."""

    unreads_only: bool = False


@dataclass(frozen=True)
class RestContext:
    """The input of a handler: the app, the path parameters and the parsed query and body."""

    hosted: HostedApp
    path: Mapping[str, str]
    query: BaseModel | None
    body: BaseModel | None

    @property
    def service(self) -> ChatService:
        """The app's chat service."""
        return self.hosted.service

    def query_as(self, model: type[_M]) -> _M:
        """Return the parsed query, which the operation declared as ``model``."""
        assert isinstance(self.query, model), f"the operation's query model is not {model}"
        return self.query

    def body_as(self, model: type[_M]) -> _M:
        """Return the parsed body, which the operation declared as ``model``."""
        assert isinstance(self.body, model), f"the operation's body model is not {model}"
        return self.body


Handler = Callable[[RestContext], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Operation:
    """One REST operation: a method on a path under ``API_PREFIX``.

    Attributes:
        method: The HTTP method.
        path: The path after ``API_PREFIX``, with ``{name}`` parameters.
        handler: Returns the response body; raises ``ApiError`` or ``ChatError``.
        operation_id: The OpenAPI ``operationId``.
        summary: One line for the OpenAPI document.
        response: The model of a 200 response body.
        query: The model of the query parameters, or ``None`` for none.
        body: The model of the JSON body, or ``None`` for no body.
        forbidden: Whether the operation can return 403.
        body_errors_by_key: Whether a 400 on the body also maps each
            top-level key to its first error (``errors``), for batches.
    """

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    response: type[BaseModel] = EmptyBody
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    forbidden: bool = False
    body_errors_by_key: bool = False

    @property
    def full_path(self) -> str:
        """The path template with ``API_PREFIX``."""
        return API_PREFIX + self.path


def domain_model(model: type[_M], data: Mapping[str, object]) -> _M:
    """Validate request data as a domain model, turning its errors into a 400 on the body.

    Raises:
        ApiError: 400 naming the first field at fault with the model's limit.
    """
    try:
        return model.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise from_validation_error(exc, "body") from exc


class RestServer:
    """The state REST calls share: the hosted apps, the rate limiter and the failure log."""

    def __init__(self, host: AppHost, rate_limiter: RateLimiter) -> None:
        self.host = host
        self.rate_limiter = rate_limiter
        self.auth_failures = AuthFailureLog()

    def routes(self, operations: list[Operation]) -> list[Route]:
        """Return one Starlette route per operation."""
        return [
            Route(
                operation.full_path,
                self._endpoint(operation),
                methods=[operation.method],
                name=operation.operation_id,
            )
            for operation in operations
        ]

    def _endpoint(self, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                context = await self._prepare(operation, request)
                result = await operation.handler(context)
                return JSONResponse(result.model_dump(mode="json", by_alias=True))
            except ApiError as exc:
                return exc.to_response()
            except ChatError as exc:
                return from_chat_error(exc).to_response()
            except BodyTooLarge:
                raise
            except Exception as exc:
                return internal_error(exc, request)

        return endpoint

    async def _prepare(self, operation: Operation, request: Request) -> RestContext:
        app_id = request.path_params["appId"]
        hosted = self.host.get(app_id)
        if hosted is None:
            raise ApiError(404, "app_not_found", f"app '{app_id}' is not served here")

        try:
            authenticate_request(hosted.app, request.headers.get("authorization"))
        except ApiError as exc:
            client = request.client.host if request.client else "an unknown address"
            self.auth_failures.record(app_id, client, exc)
            raise

        retry_after = self.rate_limiter.acquire(app_id)
        if retry_after is not None:
            limit = self.rate_limiter.limit
            raise ApiError(
                429,
                "rate_limited",
                f"app '{app_id}' sent more than {limit.requests_per_second:g} requests per "
                f"second (bursts of {limit.burst}): retry after {retry_after} seconds",
                headers={"Retry-After": str(retry_after)},
            )

        query = None
        if operation.query is not None:
            try:
                query = operation.query.model_validate(
                    dict(request.query_params), by_alias=True, by_name=False
                )
            except ValidationError as exc:
                raise from_validation_error(exc, "query") from exc
        elif request.query_params:
            name = next(iter(request.query_params))
            raise ApiError(
                400,
                "invalid_input",
                f"query parameter '{name}' is not supported by {operation.method} "
                f"{operation.full_path}: remove it",
            )

        body = None
        if operation.body is not None:
            raw = await request.body()
            try:
                body = operation.body.model_validate_json(raw, by_alias=True, by_name=False)
            except ValidationError as exc:
                raise from_validation_error(
                    exc, "body", by_key=operation.body_errors_by_key
                ) from exc

        path = {name: str(value) for name, value in request.path_params.items()}
        return RestContext(hosted, path, query, body)
