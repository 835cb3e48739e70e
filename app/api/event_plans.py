"""Subscription events completed by a plan made once per subscription, instead of graphql-core's
whole execution per event.

A chatStream sends one event per chunk, and graphql-core executes the subscription's selection
again for each (collecting fields, resolving the union, wrapping every field in its resolver and
awaitable checks): several times what the transport then costs. Yet an event is a plain object
(a Strawberry type without resolvers) and the selection is the same for every event of the
subscription. So the first event of each concrete type makes a plan with graphql-core's own
field collection (fragments, aliases, `@skip`/`@include` with the subscription's variables):
for each response key, the attribute to read and how to complete it (a scalar's or enum's
`serialize`, a list, a nested plain object). Later events of that type are completed by the plan,
and the subscription's root fields are collected once, not per event.

Anything a plan cannot do the same way goes to graphql-core, which then answers exactly as it
always did: a field with a resolver of its own, an abstract type below the root, an `is_type_of`
check, middleware, a null where the schema says non-null (graphql-core makes the error), a value a
scalar refuses. The plans live in the subscription's executor and end with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLUnionType,
    OperationType,
)
from graphql.execution.collect_fields import FieldDetailsList, collect_fields
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import get_object_definition
from strawberry.types.cast import get_strawberry_type_cast

Complete = Callable[[Any], Any]
# (response key, attribute name or None for __typename, completion of the attribute's value)
Plan = tuple[tuple[str, str | None, Complete | str], ...]
_NO_PLAN = object()  # a type whose events go to graphql-core
_PLANS = "_event_plans"
_ROOT = "root"  # the plans' entry for the subscription's root fields
_MEMBER = "member"  # entries for the plan of a class of root event


class _Unplanned(Exception):
    """This value (or this type, while planning) is left to graphql-core."""


class PlannedExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with plans for subscription events (the rest unchanged)."""

    def build_per_event_executor(self, payload: Any) -> StrawberryGraphQLCoreExecutionContext:
        # Per-event executors are shallow copies: the plans made by one serve the next.
        if _PLANS not in self.__dict__:
            self.__dict__[_PLANS] = {}
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, StrawberryGraphQLCoreExecutionContext)
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        plans = self.__dict__.get(_PLANS)  # only per-event executors of a subscription have plans
        if plans is not None:
            data = self._planned_data(plans, self.root_value)
            if data is not None:
                return self.finish(self.build_response(data))
        return super().execute_operation(serially)

    def planned_data(self, event: Any) -> dict[str, Any] | None:
        """A subscription event's `data` by its plan, without a per-event executor; None when
        graphql-core must execute it (`execute_unplanned`). For the subscription's own executor."""
        plans = self.__dict__.get(_PLANS)
        if plans is None:
            plans = self.__dict__[_PLANS] = {}
        return self._planned_data(plans, event)

    def execute_unplanned(self, event: Any) -> Any:
        """graphql-core's execution of an event (an ExecutionResult, or an awaitable of one)."""
        executor = self.build_per_event_executor(event)
        return StrawberryGraphQLCoreExecutionContext.execute_operation(executor, False)

    def _planned_data(self, plans: dict[Any, Any], event: Any) -> dict[str, Any] | None:
        middleware = self.middleware_manager.middlewares if self.middleware_manager else ()
        if middleware or (self.abort_signal is not None and self.abort_signal.aborted):
            return None
        try:
            return self._planned_event(plans, event)
        except _Unplanned:
            return None

    def _root(self, plans: dict[Any, Any]) -> tuple[str, GraphQLUnionType, FieldDetailsList]:
        """The subscription's root field (its response key, union type and selection), collected
        once (graphql-core collects it per event)."""
        root = plans.get(_ROOT)
        if root is None:
            root = plans[_ROOT] = self._collect_root()
        if root is _NO_PLAN:
            raise _Unplanned
        return root  # type: ignore[no-any-return]

    def _collect_root(self) -> Any:
        root_type = self.schema.subscription_type
        if root_type is None or self.operation.operation is not OperationType.SUBSCRIPTION:
            return _NO_PLAN
        collected = collect_fields(
            self.schema,
            self.fragments,
            self.variable_values,
            root_type,
            self.operation,
            self.hide_suggestions,
        )
        if collected.new_defer_usages or len(collected.grouped_field_set) != 1:
            return _NO_PLAN
        ((key, details),) = collected.grouped_field_set.items()
        field = root_type.fields.get(details[0].node.name.value)
        if field is None or field.subscribe is None:
            return _NO_PLAN
        field_type = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        if not isinstance(field_type, GraphQLUnionType):
            return _NO_PLAN
        return (key, field_type, details)

    def _planned_event(self, plans: dict[Any, Any], event: Any) -> dict[str, Any]:
        """The root field's answer for one event: Strawberry's subscription field passes the event
        itself as the field's value, one of the union's members."""
        key, union, details = self._root(plans)
        if event is None or get_strawberry_type_cast(event) is not None:
            raise _Unplanned
        # Each class of event's plan, found once (a new class of event is rare).
        plan = plans.get((_MEMBER, type(event)))
        if plan is None:
            definition = get_object_definition(event)
            runtime = None
            if definition is not None:
                runtime = next((t for t in union.types if t.name == definition.name), None)
            if runtime is None:
                raise _Unplanned
            plan = plans[(_MEMBER, type(event))] = self._object_plan(plans, runtime, details)
        return {key: self._completed(plan, event)}

    def _complete_object(
        self, plans: dict[Any, Any], object_type: GraphQLObjectType, details: FieldDetailsList, value: Any
    ) -> dict[str, Any]:
        return self._completed(self._object_plan(plans, object_type, details), value)

    def _object_plan(
        self, plans: dict[Any, Any], object_type: GraphQLObjectType, details: FieldDetailsList
    ) -> Any:
        # The selection's nodes, not the list holding them: lists may be collected anew.
        plan_key = (object_type.name, *(id(d.node) for d in details))
        plan = plans.get(plan_key)
        if plan is None:
            plan = plans[plan_key] = self._plan(plans, object_type, details)
        return plan

    @staticmethod
    def _completed(plan: Any, value: Any) -> dict[str, Any]:
        if plan is _NO_PLAN:
            raise _Unplanned
        result = {}
        for key, attribute, complete in plan:
            if attribute is None:
                result[key] = complete
            else:
                result[key] = complete(getattr(value, attribute))
        return result

    def _plan(self, plans: dict[Any, Any], object_type: GraphQLObjectType, details: FieldDetailsList) -> Any:
        if object_type.is_type_of is not None:
            return _NO_PLAN
        grouped = self.collect_subfields(object_type, details).grouped_field_set
        plan: list[tuple[str, str | None, Complete | str]] = []
        for key, field_details in grouped.items():
            name = field_details[0].node.name.value
            if name == "__typename":
                plan.append((key, None, object_type.name))
                continue
            field = object_type.fields.get(name)
            definition = (field.extensions or {}).get("strawberry-definition") if field else None
            if field is None or definition is None or not getattr(field.resolve, "_is_default", False):
                return _NO_PLAN
            complete = self._completion(plans, field.type, field_details)
            if complete is None:
                return _NO_PLAN
            plan.append((key, definition.python_name, complete))
        return tuple(plan)

    def _completion(
        self, plans: dict[Any, Any], field_type: GraphQLOutputType, details: FieldDetailsList
    ) -> Complete | None:
        """How a value of `field_type` is completed, or None when graphql-core must do it."""
        if isinstance(field_type, GraphQLNonNull):
            inner = self._completion(plans, field_type.of_type, details)
            return None if inner is None else _non_null(inner)
        if isinstance(field_type, GraphQLList):
            item = self._completion(plans, field_type.of_type, details)
            return None if item is None else _list_of(item)
        if isinstance(field_type, GraphQLScalarType | GraphQLEnumType):
            return _nullable(_leaf(field_type))
        if isinstance(field_type, GraphQLObjectType):
            object_type = field_type

            def complete_object(value: Any) -> dict[str, Any]:
                return self._complete_object(plans, object_type, details, value)

            return _nullable(complete_object)
        return None  # an interface or union below the root


def _leaf(leaf_type: GraphQLScalarType | GraphQLEnumType) -> Complete:
    serialize = leaf_type.serialize

    def complete(value: Any) -> Any:
        try:
            serialized = serialize(value)
        except Exception as exc:  # graphql-core turns it into the field's error
            raise _Unplanned from exc
        if serialized is None:
            raise _Unplanned
        return serialized

    return complete


def _nullable(complete: Complete) -> Complete:
    return lambda value: None if value is None else complete(value)


def _non_null(complete: Complete) -> Complete:
    def checked(value: Any) -> Any:
        result = complete(value)
        if result is None:
            raise _Unplanned  # graphql-core makes the non-null error
        return result

    return checked


def _list_of(item: Complete) -> Complete:
    def complete(values: Any) -> Any:
        if values is None:
            return None
        if isinstance(values, str | bytes | dict):
            raise _Unplanned
        return [item(value) for value in values]

    return complete
