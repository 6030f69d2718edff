"""The GraphQL schema: roots, scalars, limits and error masking.

How it executes (the executor, the validation cache, the fast paths) is ``api/execution.py``'s
business: the one module that uses graphql-core's and Strawberry's internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from prometheus_client import Counter
from starlette.websockets import WebSocket
from strawberry.extensions import MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gql_media.api.context import Context
from gql_media.api.errors import should_mask_error
from gql_media.api.execution import engine, limits
from gql_media.api.mutations import Mutation
from gql_media.api.queries import Query
from gql_media.api.subscriptions import Subscription
from gql_media.api.types import Folder, Long, SyncJob, Video
from gql_media.settings import Settings

logger = logging.getLogger(__name__)

OPERATIONS = Counter("gql_media_graphql_operations_total", "GraphQL operations run, by type", ["type"])

DEFAULT_MAX_QUERY_DEPTH = 15
DEFAULT_MAX_ALIASES = 100
DEFAULT_MAX_TOKENS = 10_000
PARSER_CACHE_SIZE = 256


class _Operation(SchemaExtension):
    """Counts operations; on a websocket, gives each operation fresh DataLoaders."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and isinstance(context.request, WebSocket):
            context.refresh_loaders()
        yield
        operation_type = self.execution_context.operation_type
        OPERATIONS.labels(type=operation_type.value if operation_type else "invalid").inc()


class ApiSchema(strawberry.Schema):
    """Logs unexpected errors with their traceback, and the client's own mistakes briefly; runs
    its extensions with the engine's runner (``create_schema`` sets it)."""

    extensions_runner: type[SchemaExtensionsRunner] = SchemaExtensionsRunner

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return self.extensions_runner(execution_context, extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            if should_mask_error(error):
                logger.error("internal error at %s", error.path, exc_info=error.original_error)
            else:
                logger.info("refused: %s", error.message)


def _long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"Long cannot represent {value!r}")
    return int(value)


LONG = strawberry.scalar(
    name="Long",
    description="64-bit integer (file sizes, byte counts) as a JSON number.",
    serialize=_long,
    parse_value=_long,
)


def create_schema(
    max_query_depth: int = DEFAULT_MAX_QUERY_DEPTH,
    max_aliases: int = DEFAULT_MAX_ALIASES,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    fast_paths: bool = True,
) -> ApiSchema:
    """The schema, with its limits (depth, aliases, tokens) and masked internal errors.

    ``fast_paths`` (``GQL_MEDIA_FAST_PATHS``) chooses the executor: the same results either way.
    """
    execution = engine(fast_paths, should_mask_error)
    schema = ApiSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Folder, Video, SyncJob],
        config=StrawberryConfig(scalar_map={Long: LONG}),
        execution_context_class=execution.executor,
        extensions=[
            *limits(max_query_depth, max_aliases),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: ParserCache(maxsize=PARSER_CACHE_SIZE),
            *execution.extensions,
            _Operation,
        ],
    )
    schema.extensions_runner = execution.runner
    execution.finish(schema)
    return schema


def schema_for(settings: Settings) -> ApiSchema:
    return create_schema(settings.max_query_depth, settings.max_aliases, settings.max_tokens, settings.fast_paths)


def export_sdl() -> str:
    """The schema's SDL, as committed in schema.graphql (``gql-media export-schema``)."""
    return create_schema().as_str() + "\n"
