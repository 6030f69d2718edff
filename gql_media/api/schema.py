"""The GraphQL schema: roots, scalars, limits and error masking."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLEnumType, GraphQLError, GraphQLField, GraphQLObjectType, GraphQLResolveInfo
from prometheus_client import Counter
from starlette.websockets import WebSocket
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionContext
from strawberry.types.field import StrawberryField

from gql_media.api.context import Context
from gql_media.api.errors import should_mask_error
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
    """Logs unexpected errors with their traceback, and the client's own mistakes briefly."""

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


def _attribute_resolver(name: str) -> Callable[[Any, GraphQLResolveInfo[Any]], Any]:
    def resolve(source: Any, _info: GraphQLResolveInfo[Any]) -> Any:
        return getattr(source, name)

    return resolve


def _enum_serializer(enum_type: GraphQLEnumType) -> Callable[[Any], Any]:
    """A dict lookup by value for the (str) enums' members, instead of a scan comparing ``.value``s."""
    names = {value.value: name for name, value in enum_type.values.items()}
    slow = enum_type.coerce_output_value

    def coerce(value: Any) -> Any:
        try:
            return names[value]
        except (KeyError, TypeError):
            return slow(value)

    return coerce


def _fast_paths(schema: ApiSchema) -> None:
    """Per-field and per-value costs cut after the schema is built; the SDL is unchanged.

    Strawberry resolves a field without a resolver through ``StrawberryField.get_result`` (two
    property reads and a call chain per field); a plain ``getattr`` does the same for a field
    read from an attribute with the default resolver. Enum values are looked up in a dict.
    """
    for graphql_type in schema._schema.type_map.values():
        if isinstance(graphql_type, GraphQLEnumType) and all(
            isinstance(value.value, str) for value in graphql_type.values.values()
        ):
            serializer = _enum_serializer(graphql_type)
            graphql_type.coerce_output_value = serializer  # type: ignore[method-assign,assignment]
            graphql_type.serialize = serializer  # type: ignore[method-assign,assignment]
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field in graphql_type.fields.values():
            _plain_attribute(field)


def _plain_attribute(field: GraphQLField) -> None:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        isinstance(definition, StrawberryField)
        and getattr(field.resolve, "_is_default", False)
        and definition.is_basic_field
        and definition.default_resolver is getattr
        and definition.python_name
    ):
        field.resolve = _attribute_resolver(definition.python_name)


def create_schema(
    max_query_depth: int = DEFAULT_MAX_QUERY_DEPTH,
    max_aliases: int = DEFAULT_MAX_ALIASES,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> ApiSchema:
    """The schema, with its limits (depth, aliases, tokens) and masked internal errors."""
    schema = ApiSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Folder, Video, SyncJob],
        config=StrawberryConfig(
            scalar_map={
                Long: strawberry.scalar(
                    name="Long",
                    description="64-bit integer (file sizes, byte counts) as a JSON number.",
                    serialize=_long,
                    parse_value=_long,
                )
            }
        ),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_query_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            lambda: MaskErrors(should_mask_error=should_mask_error, error_message="Internal server error."),
            _Operation,
        ],
    )
    _fast_paths(schema)
    return schema


def schema_for(settings: Settings) -> ApiSchema:
    return create_schema(settings.max_query_depth, settings.max_aliases, settings.max_tokens)


def export_sdl() -> str:
    """The schema's SDL, as committed in schema.graphql (``gql-media export-schema``)."""
    return create_schema().as_str() + "\n"
