"""The GraphQL schema: roots, scalars, limits and error masking."""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import strawberry
from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Path, Undefined
from prometheus_client import Counter
from starlette.websockets import WebSocket
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
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


VALIDATION_CACHE_SIZE = 256


class _ValidationCache(SchemaExtension):
    """Validation results by query text, for this schema and its fixed rules.

    Strawberry's ValidationCache keys on the rule classes too, and the limiter extensions make new
    ones for every operation: it never hit (every subscribe and query was validated again).
    """

    def __init__(self, cache: OrderedDict[str, tuple[GraphQLError, ...]]) -> None:
        super().__init__()
        self._cache = cache

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query, document = context.query, context.graphql_document
        if query is not None and document is not None and context.validation_rules:
            errors = self._cache.get(query)
            if errors is None:
                errors = tuple(validate_document(context.schema._schema, document, context.validation_rules))
                self._cache[query] = errors
                if len(self._cache) > VALIDATION_CACHE_SIZE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(query)
            context.pre_execution_errors = list(errors)
        yield


class _MaskErrors(MaskErrors):
    """MaskErrors without its per-result Protocol isinstance check when there are no errors."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)


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


class _Leaf(NamedTuple):
    attribute: str
    type: GraphQLLeafType
    non_null: bool


# Per object type: its fields that are plain attributes of a scalar or enum type, by field name.
_LEAVES: weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, _Leaf]] = weakref.WeakKeyDictionary()


# The last result of each shareable subscription operation: (operation, payload, variables, result).
_EVENT_RESULTS: dict[int, tuple[OperationDefinitionNode, Any, Any, Any]] = {}
_EVENT_RESULTS_SIZE = 256
# Whether an operation selects only plain-attribute scalars of its events (by id: AST nodes hash deeply).
_SHAREABLE: dict[int, tuple[OperationDefinitionNode, bool]] = {}


class _EventExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with a memo of its own for each subscription event.

    graphql-core 3.3's ``build_per_event_executor`` is a shallow copy, so every event's executor
    shared the subscription's ``_relevant_sub_fields`` memo. That memo is keyed by the ``id()`` of
    a field list and keeps the list alive (so the id is not reused); each event collects new
    lists, so it grew by about 1 KB per selected object per event until the subscription ended
    (issue 20: +0.5 MB/s with 20 live subscribers). A memo per event keeps its purpose (a list of
    objects in one result collects its subfields once) and dies with the event.
    """

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


class _FastExecutionContext(_EventExecutionContext):
    """graphql-core's executor with a short path for plain-attribute scalar fields.

    Such a field's value is read with ``getattr`` and coerced directly: no resolve info, path,
    resolver call chain or completion steps per field (most of a page's fields are these).
    Anything unusual (a null, a failed coercion, an exception, middleware) takes the normal
    path, which then gives the usual result or located error.
    """

    def execute_operation(self, serially: bool | None = None) -> Any:
        """A subscription event's result, shared by every subscriber of the same operation.

        The bus hands each subscriber the same event object, and the API builds one GraphQL
        object per event (``subscriptions.progress_node``); when the operation selects only
        plain-attribute scalars of it, its result depends on nothing else (not the connection's
        context), so a thousand subscribers cost one execution and a thousand sends.
        """
        operation, payload = self.operation, self.root_value
        if payload is None or operation.operation is not OperationType.SUBSCRIPTION or not self._shareable():
            return super().execute_operation(serially)
        variables = self.variable_values.coerced
        last = _EVENT_RESULTS.get(id(operation))
        if last is not None and last[0] is operation and last[1] is payload and last[2] == variables:
            return last[3]
        result = super().execute_operation(serially)
        if not self.is_awaitable(result) and not getattr(result, "errors", None):
            if len(_EVENT_RESULTS) >= _EVENT_RESULTS_SIZE:
                _EVENT_RESULTS.clear()
            _EVENT_RESULTS[id(operation)] = (operation, payload, variables, result)
        return result

    def _shareable(self) -> bool:
        operation = self.operation
        known = _SHAREABLE.get(id(operation))
        if known is None or known[0] is not operation:
            if len(_SHAREABLE) >= _EVENT_RESULTS_SIZE:
                _SHAREABLE.clear()
            known = _SHAREABLE[id(operation)] = (operation, self._only_plain_scalars(operation))
        return known[1]

    def _only_plain_scalars(self, operation: OperationDefinitionNode) -> bool:
        root_type = self.schema.subscription_type
        if root_type is None:
            return False
        for root in operation.selection_set.selections:
            if not isinstance(root, FieldNode) or root.directives or root.selection_set is None:
                return False
            field = root_type.fields.get(root.name.value)
            object_type = None if field is None else get_named_type(field.type)
            leaves = _LEAVES.get(object_type) if isinstance(object_type, GraphQLObjectType) else None
            if not leaves:
                return False
            for selection in root.selection_set.selections:
                if (
                    not isinstance(selection, FieldNode)
                    or selection.directives
                    or selection.arguments
                    or selection.name.value not in leaves
                ):
                    return False
        return True

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        leaves = _LEAVES.get(parent_type)
        middleware = self.middleware_manager
        if not leaves or (middleware is not None and middleware._middleware_resolvers):
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        results: dict[str, Any] = {}
        slow: dict[str, Any] = {}
        for response_name, field_details_list in grouped_field_set.items():
            leaf = leaves.get(field_details_list[0].node.name.value)
            if leaf is not None:
                try:
                    value = getattr(source_value, leaf.attribute)
                    if value is None:
                        if not leaf.non_null:
                            results[response_name] = None
                            continue
                    else:
                        coerced = leaf.type.coerce_output_value(value)
                        if coerced is not None and coerced is not Undefined:
                            results[response_name] = coerced
                            continue
                except Exception:  # the normal path below reports it, located
                    pass
            slow[response_name] = field_details_list
            results[response_name] = None  # keeps the response's field order
        if not slow:
            return results
        rest: Any = super().execute_fields(parent_type, source_value, path, slow, position_context)
        if self.is_awaitable(rest):

            async def merged() -> dict[str, Any]:
                return _merge(results, slow, await rest)

            return merged()
        return _merge(results, slow, rest)


def _merge(results: dict[str, Any], slow: dict[str, Any], rest: dict[str, Any]) -> dict[str, Any]:
    results.update(rest)
    for name in slow.keys() - rest.keys():  # not a field of this type: left out, as graphql-core does
        del results[name]
    return results


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


def _exact_type_first(is_type_of: Callable[[Any, Any], Any], origin: type) -> Callable[[Any, Any], Any]:
    def check(obj: Any, info: Any) -> Any:
        return type(obj) is origin or is_type_of(obj, info)

    return check


def _fast_paths(schema: ApiSchema) -> None:
    """Per-field and per-value costs cut after the schema is built; the SDL is unchanged.

    Strawberry resolves a field without a resolver through ``StrawberryField.get_result`` (two
    property reads and a call chain per field); a plain ``getattr`` does the same for a field
    read from an attribute with the default resolver, and ``_FastExecutionContext`` skips the
    executor's per-field steps for those of scalar types. Enum values are looked up in a dict;
    an object of exactly the type's class passes ``is_type_of`` at once.
    """
    for graphql_type in schema._schema.type_map.values():
        if isinstance(graphql_type, GraphQLEnumType) and all(
            isinstance(value.value, str) for value in graphql_type.values.values()
        ):
            serializer = _enum_serializer(graphql_type)
            graphql_type.coerce_output_value = serializer  # type: ignore[method-assign,assignment]
            graphql_type.serialize = serializer  # type: ignore[method-assign,assignment]
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        definition = (graphql_type.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        origin = getattr(definition, "origin", None)
        if graphql_type.is_type_of is not None and isinstance(origin, type):
            graphql_type.is_type_of = _exact_type_first(graphql_type.is_type_of, origin)
        leaves: dict[str, _Leaf] = {}
        for name, field in graphql_type.fields.items():
            attribute = _plain_attribute(field)
            if attribute is None:
                continue
            field.resolve = _attribute_resolver(attribute)
            field_type = field.type
            non_null = isinstance(field_type, GraphQLNonNull)
            inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
            if is_leaf_type(inner) and not field.args:
                leaves[name] = _Leaf(attribute, inner, non_null)
        if leaves:
            _LEAVES[graphql_type] = leaves


def _plain_attribute(field: GraphQLField) -> str | None:
    """The Python attribute a field is read from, when it has no resolver of its own."""
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        isinstance(definition, StrawberryField)
        and getattr(field.resolve, "_is_default", False)
        and definition.is_basic_field
        and definition.default_resolver is getattr
        and definition.python_name
    ):
        return definition.python_name
    return None


def create_schema(
    max_query_depth: int = DEFAULT_MAX_QUERY_DEPTH,
    max_aliases: int = DEFAULT_MAX_ALIASES,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> ApiSchema:
    """The schema, with its limits (depth, aliases, tokens) and masked internal errors."""
    validated: OrderedDict[str, tuple[GraphQLError, ...]] = OrderedDict()
    schema = ApiSchema(
        execution_context_class=_FastExecutionContext,
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
            lambda: _ValidationCache(validated),
            lambda: _MaskErrors(should_mask_error=should_mask_error, error_message="Internal server error."),
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
