"""How the schema executes: every use of graphql-core's and Strawberry's internals, in one place.

Past 400 lines, kept whole on purpose: issue 13 asks that the private internals of an outside
library be used in one wrapper module only, and this is that module for graphql-core and
Strawberry; split, an upgrade of either would have to be checked in several places.

``engine(fast_paths)`` gives ``schema.py`` what it plugs into ``strawberry.Schema``: the executor
class, the validation and error-masking extensions, and what to do to the built schema.

Always on (fixes, not speed-ups): ``EventExecutor`` gives each subscription event a subfield
memo of its own (graphql-core 3.3's per-event executor shared the subscription's: issue 20), and
lets go of its helpers once its result is built, so that an operation's executor, context and
rows are freed with its request instead of by the cyclic garbage collector (``_FINISHED_HELPERS``);
``limits`` makes the depth and alias rules' classes once, not two per operation.

The fast paths (``GQL_MEDIA_FAST_PATHS``, on by default; off, only the fix above reaches into a
library's internals). They cut per-field and per-value costs without changing a result; the
parity test (tests/api/test_execution_parity.py) runs a corpus of operations both ways:
- ``FastExecutor``: plain-attribute scalar fields read and coerced without the per-field
  executor steps; plain-attribute object, union and list-of-object fields (a page's edges and
  nodes) completed straight into their subfields, the union's member found by the value's class
  (a page of 500 descendants: half the CPU); one execution per subscription event shared by the
  operation's subscribers;
- prefetched fields (``prefetched(attribute)`` in a field's metadata): an object field with a
  resolver whose value the parent may already hold in a private attribute (a page's videos hold
  their folders, read at once); when it does, the field is completed from it as a plain-attribute
  one, and when it is None the resolver runs as before (a page of 50 videos with their folders:
  50 resolver calls through the executor's per-field steps fewer);
- ``install_fast_paths``: default-resolver fields read by ``getattr``, enum values serialised by a
  dict lookup, ``is_type_of`` true at once for an object of exactly the type's class;
- ``ValidationCache``: validation results by query text (Strawberry's keys on the rule classes,
  new for every operation: it never hit);
- ``LeanMaskErrors``: no per-result Protocol check when a result has no errors;
- ``LeanExtensionsRunner``: at each result, only the extensions with a hook there are asked
  (1,000 subscribers of a small library's syncs: server CPU a delivery 50 -> 45 us, medians of 6).

The internals used (hence the upper pins of strawberry-graphql and graphql-core in
pyproject.toml): ``Executor.build_per_event_executor`` and its ``_relevant_sub_fields`` memo,
``Executor.build_response`` and ``async_helpers``, the ``create_validator`` of Strawberry's
``query_depth_limiter`` and ``max_aliases`` extension modules,
``Executor.execute_fields``/``execute_operation``/``middleware_manager._middleware_resolvers``,
``Executor.collect_subfields``/``handle_field_error``/``settle_in_background`` (the value
completion of ``execute_field`` and ``complete_list_item_value``, error for error),
``StrawberryGraphQLCoreExecutionContext``, ``Schema._schema``, ``strawberry.schema.schema.
validate_document``, ``strawberry.types.cast.get_strawberry_type_cast``,
``MaskErrors._process_result``, ``SchemaExtensionsRunner`` and ``StreamResultContextManager`` (with
``Schema.create_extensions_runner``), ``GraphQLCoreConverter.DEFINITION_BACKREF`` and ``StrawberryField``
attributes, and assignments to the built types' ``resolve``, ``serialize``/``coerce_output_value``
and ``is_type_of``.

Why one module past 400 lines: it is the one place that reaches into those libraries (what a
version bump must check); split, the internals would be spread over several.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import strawberry
from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLString,
    GraphQLUnionType,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
)
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.extensions import AddValidationRules, MaskErrors, SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionContext, StreamExecutionResult
from strawberry.types.cast import get_strawberry_type_cast
from strawberry.types.field import StrawberryField
from strawberry.utils.await_maybe import await_maybe

VALIDATION_CACHE_SIZE = 256
MASKED_MESSAGE = "Internal server error."

ExtensionFactory = Callable[[], SchemaExtension]

# The metadata key naming the attribute that may hold a field's value already (``prefetched``).
_PREFETCHED = "gql_media.prefetched"


def prefetched(attribute: str) -> dict[str, str]:
    """A field's ``metadata``: ``attribute`` of the parent object holds its value when it is not None.

    With the fast paths the field is then completed without calling its resolver; the resolver must
    return that same value whenever it is set (it is the result either way).
    """
    return {_PREFETCHED: attribute}


@dataclass(frozen=True, slots=True)
class Engine:
    """What ``strawberry.Schema`` is built with, and what is done to it once built."""

    executor: type[StrawberryGraphQLCoreExecutionContext]
    extensions: Sequence[ExtensionFactory]
    finish: Callable[[strawberry.Schema], None]
    runner: type[SchemaExtensionsRunner] = SchemaExtensionsRunner


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
        runner=LeanExtensionsRunner,
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

    def build_response(self, data: Any) -> Any:
        """The result; and the executor lets go of its helpers, which hold it (see ``_FINISHED_HELPERS``)."""
        response = super().build_response(data)
        self.async_helpers = _FINISHED_HELPERS
        return response


def _gather_finished(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    return gather_with_cancel(*values)


_SETTLING: set[asyncio.Future[list[Any]]] = set()


def _track_finished(values: Sequence[Any]) -> None:
    """``Executor.track_async_work`` for an execution that is over: awaitables still settle, in the background."""
    awaitables = [value for value in values if inspect.isawaitable(value)]
    if awaitables:
        future = asyncio.gather(*awaitables, return_exceptions=True)
        _SETTLING.add(future)
        future.add_done_callback(_SETTLING.discard)


# graphql-core 3.3's executor keeps, as ``async_helpers``, helpers made of two of its own bound
# methods: the executor and its helpers form a reference cycle, so each operation's executor and
# all it reaches (the context with its loaders and every row read, the request, the result) is
# freed only by the cyclic garbage collector, by a full collection once it has lived through two
# young ones, which a request of a busy server does. Under the soak's load (20 clients of a page of
# 50 videos, 5 a second each; 50 subscribers; churn) that was 227 objects per request in cycles
# (every row of the page among them): the heap swung by 6 MB between collections and the RSS kept
# each new peak (+15 to +24% over 25 minutes). An executor whose result is built lets them go, and
# is freed with its request (with ``limits``: 181,335 objects left to the collector in 8.5 s of that
# load before, none after). Nothing reads an executor's helpers once its result is built; an info
# kept past it (a resolver's late task) still holds the old ones, which still work.
_FINISHED_HELPERS = GraphQLResolveInfoHelpers(gather=_gather_finished, track=_track_finished)


def limits(max_depth: int, max_aliases: int) -> tuple[ExtensionFactory, ...]:
    """Factories of Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` rules, their rule
    classes made once.

    Each of those extensions makes a new validation rule class (``create_validator``) when it is
    made, i.e. for every operation: two classes per request, each a reference cycle (a class and
    its methods) left to the cyclic garbage collector. The same classes, made once, are added to
    every operation's rules (``AddValidationRules``): the same rules, with the same messages. Both
    go in one extension: Strawberry looks up each extension's hooks at every phase of a request
    and at every result of a subscription (a quarter of a delivery's CPU, 1,000 subscribers).
    """
    depth_rule = depth_validator(max_depth, None)
    aliases_rule = aliases_validator(max_aliases)
    return (lambda: AddValidationRules([depth_rule, aliases_rule]),)


class ValidationCache(SchemaExtension):
    """Validation results by query text, for this schema and its fixed rules.

    Strawberry's ValidationCache keys on the rule classes too, and Strawberry's limiter extensions
    made new ones for every operation: it never hit (every subscribe and query was validated
    again). ``limits`` now makes them once; this cache keeps its own key, the query's text.
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


class LeanExtensionsRunner(SchemaExtensionsRunner):
    """Strawberry's extensions runner, asking at each result only the extensions with work there.

    At every result (each event of each subscriber, and each query's), Strawberry builds a
    context manager that looks up every extension's ``on_stream_result`` hook, and awaits every
    extension's ``get_results``. Of the six extensions an operation has, one has a stream hook
    (the error masking) and none has results: the rest are sorted out once per operation.
    """

    def __init__(self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None) -> None:
        super().__init__(execution_context, extensions)
        self._streaming = [e for e in self.extensions if _overrides(e, "on_stream_result")]
        self._reporting = [e for e in self.extensions if _overrides(e, "get_results")]

    def on_stream_result(self, result: StreamExecutionResult) -> StreamResultContextManager:
        return StreamResultContextManager(self._streaming, result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._reporting:
            data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data


def _overrides(extension: SchemaExtension, hook: str) -> bool:
    """Whether the extension's class has a hook of its own (what Strawberry's runner checks)."""
    return getattr(type(extension), hook) is not getattr(SchemaExtension, hook)


class LeanMaskErrors(MaskErrors):
    """MaskErrors without its per-result Protocol isinstance check when there are no errors."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)


class _Leaf(NamedTuple):
    attribute: str
    type: GraphQLLeafType
    non_null: bool
    # A value of exactly this class is its own coerced value (String and ID: str, Boolean: bool).
    passthrough: builtins.type | None = None


class _Composite(NamedTuple):
    """A plain-attribute field of an object or union type, or a list of them."""

    attribute: str
    field_type: GraphQLOutputType  # the field's own type (errors are located with it)
    non_null: bool
    item_type: GraphQLOutputType | None  # a list's item type; None: not a list
    # The object type of each Python class a value may have (a union's members: one each).
    runtime: dict[type, GraphQLObjectType]
    abstract: bool  # a union: a value cast with ``strawberry.cast`` resolves otherwise
    resolved: bool = False  # a prefetched field: None in ``attribute`` means "ask the resolver"


# A field of a grouped field set: (response name, its field details, its leaf or composite or neither).
_Planned = tuple[str, Any, "_Leaf | None", "_Composite | None"]


class _Shape(NamedTuple):
    """Per object type: its plain-attribute fields, by field name."""

    leaves: dict[str, _Leaf]
    composites: dict[str, _Composite]


_SHAPES: weakref.WeakKeyDictionary[GraphQLObjectType, _Shape] = weakref.WeakKeyDictionary()
# graphql-core's own scalars whose output coercion returns a value of this class unchanged.
_PASSTHROUGH: dict[GraphQLLeafType, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}

# A field FastExecutor leaves to graphql-core's own path.
_SLOW: Any = object()


# The last result of each shareable subscription operation: (operation, payload, variables, result,
# the per-event executor that made it). That executor holds its subscriber's context until the
# operation's next event replaces it: one context per operation, at most ``_EVENT_RESULTS_SIZE``.
_EVENT_RESULTS: dict[int, tuple[OperationDefinitionNode, Any, Any, Any, Any]] = {}
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

    def build_per_event_executor(self, payload: Any) -> Any:
        # Another subscriber of the same operation and variables had this event executed: the
        # executor that did it answers from the shared result (``execute_operation``), and this one
        # is not copied (the copy was a sixth of the server's CPU a delivery, 1,000 subscribers).
        last = _EVENT_RESULTS.get(id(self.operation))
        if (
            last is not None
            and last[0] is self.operation
            and last[1] is payload
            and last[2] == self.variable_values.coerced
        ):
            return last[4]
        # The memos below hold the field lists they are keyed by: like graphql-core's own memo
        # (issue 20), each event's copy starts its own, so none outlives the event.
        executor = super().build_per_event_executor(payload)
        executor._shapes = executor._plans = executor._subfield_memo = None
        return executor

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
            _EVENT_RESULTS[id(operation)] = (operation, payload, variables, result, self)
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
            shape = _SHAPES.get(object_type) if isinstance(object_type, GraphQLObjectType) else None
            leaves = None if shape is None else shape.leaves
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

    # Each operation's executor looks a type's shape up once (a weak dictionary costs more per call).
    _shapes: dict[GraphQLObjectType, _Shape | None] | None = None

    def _shape(self, parent_type: GraphQLObjectType) -> _Shape | None:
        shapes = self._shapes
        if shapes is None:
            shapes = self._shapes = {}
        try:
            return shapes[parent_type]
        except KeyError:
            shape = shapes[parent_type] = _SHAPES.get(parent_type)
            return shape

    # Each grouped field set's fields looked up in its type's shape once (a list's items share one set).
    _plans: dict[int, tuple[Any, _Shape, list[_Planned]]] | None = None

    def _plan(self, shape: _Shape, grouped_field_set: Any) -> list[_Planned]:
        plans = self._plans
        if plans is None:
            plans = self._plans = {}
        known = plans.get(id(grouped_field_set))
        if known is not None and known[0] is grouped_field_set and known[1] is shape:
            return known[2]
        leaves, composites = shape
        plan: list[_Planned] = []
        for response_name, field_details_list in grouped_field_set.items():
            name = field_details_list[0].node.name.value
            leaf = leaves.get(name)
            plan.append((response_name, field_details_list, leaf, None if leaf is not None else composites.get(name)))
        # Holding the set keeps its id from being reused within this operation.
        plans[id(grouped_field_set)] = (grouped_field_set, shape, plan)
        return plan

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        shape = self._shape(parent_type)
        middleware = self.middleware_manager
        if shape is None or (middleware is not None and middleware._middleware_resolvers):
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        is_awaitable = self.is_awaitable
        results: dict[str, Any] = {}
        slow: dict[str, Any] = {}
        pending: list[str] = []  # composite fields whose value is still to be awaited
        try:
            for response_name, field_details_list, leaf, composite in self._plan(shape, grouped_field_set):
                if leaf is not None:
                    value = _leaf_value(leaf, source_value)
                    if value is not _SLOW:
                        results[response_name] = value
                        continue
                # A deferred fragment's position is graphql-core's own business.
                elif composite is not None and position_context is None:
                    value = self._complete_composite(
                        composite, source_value, field_details_list, Path(path, response_name, parent_type.name)
                    )
                    if value is not _SLOW:
                        results[response_name] = value
                        if is_awaitable(value):
                            pending.append(response_name)
                        continue
                slow[response_name] = field_details_list
                results[response_name] = None  # keeps the response's field order
            rest: Any = (
                super().execute_fields(parent_type, source_value, path, slow, position_context) if slow else None
            )
        except Exception:
            if pending:  # as graphql-core does: what was started is settled, not orphaned
                self.settle_in_background([results[name] for name in pending])
            raise
        rest_pending = rest is not None and is_awaitable(rest)
        if rest is not None and not rest_pending:
            _merge(results, slow, rest)
        if not pending and not rest_pending:
            return results

        async def gathered() -> dict[str, Any]:
            awaitables = [results[name] for name in pending]
            if rest_pending:
                awaitables.append(rest)
            values = [await awaitables[0]] if len(awaitables) == 1 else await gather_with_cancel(*awaitables)
            results.update(zip(pending, values, strict=False))
            if rest_pending:
                _merge(results, slow, values[-1])
            return results

        return gathered()

    def _complete_composite(self, composite: _Composite, source: Any, field_details_list: Any, path: Path) -> Any:
        """A plain-attribute object, union or list field, completed as graphql-core does, or ``_SLOW``.

        Whatever is unusual is left to the normal path before anything runs: a null where one is
        not allowed, a value of another class, a cast object, a streamed list, deferred fragments.
        Errors are handled as ``execute_field`` and ``complete_list_item_value`` handle them.
        """
        try:
            value = getattr(source, composite.attribute)
        except Exception:
            return _SLOW
        if value is None:
            return _SLOW if composite.non_null or composite.resolved else None
        runtime = composite.runtime
        item_type = composite.item_type
        if item_type is None:
            object_type = runtime.get(type(value))
            if object_type is None or (composite.abstract and get_strawberry_type_cast(value) is not None):
                return _SLOW
            fields = self._subfields(object_type, field_details_list)
            if fields is None:
                return _SLOW
            return self._complete_object(object_type, value, fields, composite.field_type, field_details_list, path)
        if type(value) is not list or field_details_list[0].node.directives:
            return _SLOW
        kinds: list[GraphQLObjectType] = []
        groups: dict[GraphQLObjectType, Any] = {}
        for item in value:
            kind = runtime.get(type(item))
            if kind is None or (composite.abstract and get_strawberry_type_cast(item) is not None):
                return _SLOW
            if kind not in groups:
                groups[kind] = self._subfields(kind, field_details_list)
                if groups[kind] is None:
                    return _SLOW
            kinds.append(kind)
        try:
            completed = self._complete_items(value, kinds, groups, item_type, field_details_list, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, composite.field_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._guarded(completed, composite.field_type, field_details_list, path)
        return completed

    # (object type, id of a field list) -> (the list, its subfields): the items of a list share them.
    _subfield_memo: dict[tuple[GraphQLObjectType, int], tuple[Any, Any]] | None = None

    def _subfields(self, object_type: GraphQLObjectType, field_details_list: Any) -> Any:
        """The object's grouped subfields (graphql-core's memo, looked up once per field list here), or
        None when a fragment is deferred."""
        memo = self._subfield_memo
        if memo is None:
            memo = self._subfield_memo = {}
        key = (object_type, id(field_details_list))
        known = memo.get(key)
        if known is not None and known[0] is field_details_list:
            return known[1]
        grouped, new_defer_usages, _forbidden = self.collect_subfields(object_type, field_details_list)
        subfields = None if new_defer_usages else grouped
        memo[key] = (field_details_list, subfields)  # holding the list keeps its id from being reused
        return subfields

    def _complete_object(
        self,
        object_type: GraphQLObjectType,
        value: Any,
        fields: Any,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        path: Path,
    ) -> Any:
        try:
            completed = self.execute_fields(object_type, value, path, fields, None)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._guarded(completed, return_type, field_details_list, path)
        return completed

    def _complete_items(
        self,
        items: list[Any],
        kinds: list[GraphQLObjectType],
        groups: dict[GraphQLObjectType, Any],
        item_type: GraphQLOutputType,
        field_details_list: Any,
        path: Path,
    ) -> Any:
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        waiting: list[int] = []
        try:
            for index, item in enumerate(items):
                item_path = path.add_key(index, None)
                kind = kinds[index]
                try:
                    done = self.execute_fields(kind, item, item_path, groups[kind], None)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    completed.append(None)
                    continue
                if is_awaitable(done):
                    waiting.append(index)
                    done = self._guarded(done, item_type, field_details_list, item_path)
                completed.append(done)
        except Exception:
            if waiting:
                self.settle_in_background([completed[index] for index in waiting])
            raise
        if not waiting:
            return completed

        async def awaited() -> list[Any]:
            if len(waiting) == 1:
                completed[waiting[0]] = await completed[waiting[0]]
            else:
                values = await gather_with_cancel(*(completed[index] for index in waiting))
                for index, value in zip(waiting, values, strict=True):
                    completed[index] = value
            return completed

        return awaited()

    async def _guarded(
        self, completed: Awaitable[Any], return_type: GraphQLOutputType, field_details_list: Any, path: Path
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None


def _leaf_value(leaf: _Leaf, source: Any) -> Any:
    """A plain-attribute scalar's coerced value, or ``_SLOW`` (the normal path then reports it, located)."""
    try:
        value = getattr(source, leaf.attribute)
        if type(value) is leaf.passthrough:  # the commonest case: a str (String, ID) or bool as it is
            return value
        if value is None:
            return _SLOW if leaf.non_null else None
        coerced = leaf.type.coerce_output_value(value)
    except Exception:
        return _SLOW
    return _SLOW if coerced is None or coerced is Undefined else coerced


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
        origin = _origin(graphql_type)
        if graphql_type.is_type_of is not None and origin is not None:
            graphql_type.is_type_of = _exact_type_first(graphql_type.is_type_of, origin)
        leaves: dict[str, _Leaf] = {}
        composites: dict[str, _Composite] = {}
        for name, field in graphql_type.fields.items():
            resolved = False
            attribute = _plain_attribute(field)
            if attribute is None:
                attribute = _prefetched_attribute(field)
                if attribute is None or field.args:
                    continue
                resolved = True  # its resolver stays: it runs when the attribute is None
            else:
                field.resolve = _attribute_resolver(attribute)
                if field.args:
                    continue
            field_type = field.type
            non_null = isinstance(field_type, GraphQLNonNull)
            inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
            if is_leaf_type(inner):
                if not resolved:
                    leaves[name] = _Leaf(attribute, inner, non_null, _PASSTHROUGH.get(inner))
                continue
            item_type = inner.of_type if isinstance(inner, GraphQLList) else None
            target = inner if item_type is None else get_nullable_type(item_type)
            runtime = _runtime_types(target)
            if runtime is not None:
                abstract = isinstance(target, GraphQLUnionType)
                composites[name] = _Composite(attribute, field_type, non_null, item_type, runtime, abstract, resolved)
        if leaves or composites:
            _SHAPES[graphql_type] = _Shape(leaves, composites)


def _origin(graphql_type: GraphQLObjectType) -> type | None:
    """The Python class Strawberry built ``graphql_type`` from."""
    definition = (graphql_type.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    origin = getattr(definition, "origin", None)
    return origin if isinstance(origin, type) else None


def _runtime_types(target: Any) -> dict[type, GraphQLObjectType] | None:
    """Class to object type, for an object type or a union whose members are all known classes."""
    members = [target] if isinstance(target, GraphQLObjectType) else None
    if isinstance(target, GraphQLUnionType):
        members = list(target.types)
    if not members:
        return None
    runtime: dict[type, GraphQLObjectType] = {}
    for member in members:
        origin = _origin(member)
        if origin is None or origin in runtime:
            return None
        runtime[origin] = member
    return runtime


def _prefetched_attribute(field: GraphQLField) -> str | None:
    """The attribute ``prefetched`` named in a field's metadata (its resolver takes no GraphQL arguments)."""
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if isinstance(definition, StrawberryField) and definition.metadata:
        attribute = definition.metadata.get(_PREFETCHED)
        if isinstance(attribute, str):
            return attribute
    return None


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
