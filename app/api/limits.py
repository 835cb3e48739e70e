"""Query limits checked during validation, before anything executes: depth, aliases and cost.

Cost: every field of an object type costs 1 (leaf fields 0) unless `FIELD_COSTS` says otherwise;
a field with `first`/`last` multiplies the cost of what it selects by that number (a variable
counts as the maximum page size, an absent argument as the default). Introspection (`__schema`,
`__type`) is free and does not count towards depth, so GraphiQL keeps working.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql.type import GraphQLInterfaceType

from app.domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

# (type, field) -> own cost, replacing the default. Calls that reach a provider are the dear ones.
FIELD_COSTS: dict[tuple[str, str], int] = {
    ("Mutation", "generate"): 50,
    ("Mutation", "chat"): 50,
    ("Mutation", "embed"): 50,
    ("Mutation", "promptRun"): 50,
    ("Subscription", "chatStream"): 50,
    ("Query", "availableModels"): 20,
    ("Query", "usage"): 20,
}
_PAGE_ARGUMENTS = ("first", "last")


def _quota_error(what: str, value: int, limit: int, node: Any) -> GraphQLError:
    return GraphQLError(
        f"The query is too complex: {what} {value} exceeds the limit of {limit}.",
        nodes=[node],
        extensions={"code": "QUERY_TOO_COMPLEX", what.replace(" ", "_"): value, "limit": limit},
    )


def complexity_rule(*, max_depth: int, max_aliases: int, max_cost: int) -> type[ValidationRule]:
    class QueryComplexityRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.aliases = 0
            self.fragments: dict[str, FragmentDefinitionNode] = {
                d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)
            }

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.alias is not None:
                self.aliases += 1
                if self.aliases == max_aliases + 1:
                    self.report_error(_quota_error("aliases", self.aliases, max_aliases, node))

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            schema = self.context.schema
            root = {
                OperationType.QUERY: schema.query_type,
                OperationType.MUTATION: schema.mutation_type,
                OperationType.SUBSCRIPTION: schema.subscription_type,
            }[node.operation]
            if root is None:
                return
            cost, depth = self._measure(node.selection_set, root, 1, set())
            if depth > max_depth:
                self.report_error(_quota_error("depth", depth, max_depth, node))
            if cost > max_cost:
                self.report_error(_quota_error("cost", cost, max_cost, node))

        def _measure(
            self, selection_set: SelectionSetNode, parent: GraphQLNamedType, level: int, seen: set[str]
        ) -> tuple[int, int]:
            """(cost, deepest level) of a selection set on `parent`."""
            cost, depth = 0, level - 1
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    c, d = self._field(selection, parent, level, seen)
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    target = self.context.schema.get_type(condition.name.value) if condition else parent
                    c, d = self._measure(selection.selection_set, target or parent, level, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or name in seen:
                        continue  # unknown or cyclic: other rules report it
                    target = self.context.schema.get_type(fragment.type_condition.name.value)
                    c, d = self._measure(fragment.selection_set, target or parent, level, seen | {name})
                else:
                    continue
                cost += c
                depth = max(depth, d)
            return cost, depth

        def _field(
            self, node: FieldNode, parent: GraphQLNamedType, level: int, seen: set[str]
        ) -> tuple[int, int]:
            name = node.name.value
            if name.startswith("__"):
                return 0, 0
            if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) or name not in parent.fields:
                return 0, level  # unknown fields are reported by the standard rules
            definition = parent.fields[name]
            field_type = get_named_type(definition.type)
            own = FIELD_COSTS.get((parent.name, name), 0 if is_leaf_type(field_type) else 1)
            if node.selection_set is None:
                return own, level
            child_cost, depth = self._measure(node.selection_set, field_type, level + 1, seen)
            paged = any(a in definition.args for a in _PAGE_ARGUMENTS)
            return own + _multiplier(node, paged) * child_cost, depth

    return QueryComplexityRule


def _multiplier(node: FieldNode, paged: bool) -> int:
    for argument in node.arguments or ():
        if argument.name.value in _PAGE_ARGUMENTS:
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(1, min(int(value.value), MAX_PAGE_SIZE))
            if isinstance(value, VariableNode):
                return MAX_PAGE_SIZE
    return DEFAULT_PAGE_SIZE if paged else 1
