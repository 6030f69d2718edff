"""How the schema executes: every use of graphql-core's and Strawberry's internals, in one place.

``engine(fast_paths)`` gives ``schema.py`` what it plugs into ``strawberry.Schema``: the executor
class, the validation and error-masking extensions, and what to do to the built schema.

Always on (a fix, not a speed-up): ``EventExecutor`` gives each subscription event a subfield
memo of its own (graphql-core 3.3's per-event executor shared the subscription's: issue 20).

The fast paths (``GQL_MEDIA_FAST_PATHS``, on by default; off, only the fix above reaches into a
library's internals). They cut per-field and per-value costs without changing a result; the
parity test (tests/api/test_execution_parity.py) runs a corpus of operations both ways:
- ``FastExecutor``: plain-attribute scalar fields read and coerced without the per-field
  executor steps; one execution per subscription event shared by the operation's subscribers;
- ``install_fast_paths``: default-resolver fields read by ``getattr``, enum values serialised by a
  dict lookup, ``is_type_of`` true at once for an object of exactly the type's class;
- ``ValidationCache``: validation results by query text (Strawberry's keys on the rule classes,
  new for every operation: it never hit);
- ``LeanMaskErrors``: no per-result Protocol check when a result has no errors.

The internals used (hence the upper pins of strawberry-graphql and graphql-core in
pyproject.toml): ``Executor.build_per_event_executor`` and its ``_relevant_sub_fields`` memo,
``Executor.execute_fields``/``execute_operation``/``middleware_manager._middleware_resolvers``,
``StrawberryGraphQLCoreExecutionContext``, ``Schema._schema``, ``strawberry.schema.schema.
validate_document``, ``MaskErrors._process_result``, ``GraphQLCoreConverter.DEFINITION_BACKREF``
and ``StrawberryField`` attributes, and assignments to the built types' ``resolve``,
``serialize``/``coerce_output_value`` and ``is_type_of``.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

VALIDATION_CACHE_SIZE = 256
MASKED_MESSAGE = "Internal server error."

ExtensionFactory = Callable[[], SchemaExtension]


@dataclass(frozen=True, slots=True)
class Engine:
    """What ``strawberry.Schema`` is built with, and what is done to it once built."""

    executor: type[StrawberryGraphQLCoreExecutionContext]
    extensions: Sequence[ExtensionFactory]
    finish: Callable[[strawberry.Schema], None]


def engine(fast_paths: bool, should_mask_error: Callable[[GraphQLError], bool]) -> Engine:
    """The executor and extensions: with the fast paths, or the plain ones (plus the memo fix)."""
    if not fast_paths:
        return Engine(
            executor=EventExecutor,
            extensions=(lambda: MaskErrors(should_mask_error=should_mask_error, error_message=MASKED_MESSAGE),),
            finish=lambda _schema: None,
        )
    validated: OrderedDict[str, tuple[GraphQLError, ...]] = OrderedDict()
    return Engine(
        executor=FastExecutor,
        extensions=(
            lambda: ValidationCache(validated),
            lambda: LeanMaskErrors(should_mask_error=should_mask_error, error_message=MASKED_MESSAGE),
        ),
        finish=install_fast_paths,
    )


class EventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with a memo of its own for each subscription event.

    graphql-core 3.3's ``build_per_event_executor`` is a shallow copy, so every event's executor
    shared the subscription's ``_relevant_sub_fields`` memo. That memo is keyed by the ``id()`` of
    a field list and keeps the list alive (so the id is not reused); each event collects new
    lists, so it grew by a few KB per event until the subscription ended (issue 20: the web UI's
    subscription, 20 subscribers under churn, +160 MB a minute). A memo per event keeps its
    purpose (a list of objects in one result collects its subfields once) and dies with the event.
    """

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


class ValidationCache(SchemaExtension):
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


class LeanMaskErrors(MaskErrors):
    """MaskErrors without its per-result Protocol isinstance check when there are no errors."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)


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


class FastExecutor(EventExecutor):
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


def install_fast_paths(schema: strawberry.Schema) -> None:
    """Per-field and per-value costs cut after the schema is built; the SDL is unchanged.

    Strawberry resolves a field without a resolver through ``StrawberryField.get_result`` (two
    property reads and a call chain per field); a plain ``getattr`` does the same for a field
    read from an attribute with the default resolver, and ``FastExecutor`` skips the executor's
    per-field steps for those of scalar types. Enum values are looked up in a dict; an object of
    exactly the type's class passes ``is_type_of`` at once.
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
