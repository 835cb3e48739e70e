"""Query limits checked before the standard validation, before anything executes: depth, aliases
and cost.

Cost: every field of an object type costs 1 (leaf fields 0) unless `FIELD_COSTS` says otherwise;
a field with `first`/`last` multiplies the cost of what it selects by that number (a variable
counts as the maximum page size, an absent argument as the default). Introspection (`__schema`,
`__type`) is free and does not count towards depth, so GraphiQL keeps working.

The walk is linear in the size of the document: a fragment is measured once (per type it applies
to), however often it is spread, and the walk stops as soon as a limit is passed. Otherwise a
fragment spread twice in a fragment spread twice in … costs 2^n visits for n fragments, and
a 1 KB document could hold the event loop for seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql.type import GraphQLInterfaceType

from app.config import Settings
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


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int
    max_aliases: int
    max_cost: int

    @classmethod
    def of(cls, settings: Settings) -> QueryLimits:
        return cls(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_query_aliases,
            max_cost=settings.max_query_cost,
        )

    def check(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        """QUERY_TOO_COMPLEX errors of a parsed document: at most one per limit and operation.
        Unknown fields, types and fragments, and fragment cycles, count for nothing here: the
        standard validation rules report them."""
        errors = []
        aliases = _count_aliases(document)
        if aliases > self.max_aliases:
            errors.append(_too_complex("aliases", aliases, self.max_aliases, document))
        measure = _Measure(schema, document, self)
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                try:
                    measure.operation(definition)
                except _LimitPassed as passed:
                    errors.append(_too_complex(passed.what, passed.value, passed.limit, definition))
        return errors


def _too_complex(what: str, value: int, limit: int, node: Node) -> GraphQLError:
    # `value` is how far the walk got before it stopped: the whole document may need more.
    return GraphQLError(
        f"The query is too complex: its {what} exceeds the limit of {limit}.",
        nodes=[node],
        extensions={"code": "QUERY_TOO_COMPLEX", what: value, "limit": limit},
    )


class _LimitPassed(Exception):
    def __init__(self, what: str, value: int, limit: int) -> None:
        super().__init__(what)
        self.what, self.value, self.limit = what, value, limit


class _Measure:
    """(cost, deepest level) of selection sets, with each fragment's measure kept for reuse. Depth
    is kept relative to where the fragment was spread, since the same fragment may be spread at
    several levels."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, limits: QueryLimits) -> None:
        self.schema = schema
        self.limits = limits
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.measured: dict[tuple[str, str], tuple[int, int]] = {}  # (fragment, type) -> (cost, depth)
        self.entered: set[str] = set()  # fragments being measured: a cycle counts for nothing

    def operation(self, node: OperationDefinitionNode) -> None:
        root = {
            OperationType.QUERY: self.schema.query_type,
            OperationType.MUTATION: self.schema.mutation_type,
            OperationType.SUBSCRIPTION: self.schema.subscription_type,
        }[node.operation]
        if root is not None:
            self._selection_set(node.selection_set, root, 1)

    def _selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, level: int
    ) -> tuple[int, int]:
        cost, depth = 0, level - 1
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                c, d = self._field(selection, parent, level)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                c, d = self._selection_set(selection.selection_set, target or parent, level)
            elif isinstance(selection, FragmentSpreadNode):
                c, d = self._spread(selection, parent, level)
            else:
                continue
            cost += c
            depth = max(depth, d)
            self._within("cost", cost, self.limits.max_cost)
        return cost, depth

    def _spread(self, node: FragmentSpreadNode, parent: GraphQLNamedType, level: int) -> tuple[int, int]:
        name = node.name.value
        fragment = self.fragments.get(name)
        if fragment is None or name in self.entered:
            return 0, level - 1
        target = self.schema.get_type(fragment.type_condition.name.value) or parent
        known = self.measured.get((name, target.name))
        if known is None:
            self.entered.add(name)
            try:
                cost, depth = self._selection_set(fragment.selection_set, target, level)
            finally:
                self.entered.discard(name)
            self.measured[(name, target.name)] = (cost, depth - level)
            return cost, depth
        cost, relative_depth = known
        depth = relative_depth + level
        self._within("depth", depth, self.limits.max_depth)
        return cost, depth

    def _field(self, node: FieldNode, parent: GraphQLNamedType, level: int) -> tuple[int, int]:
        name = node.name.value
        if name.startswith("__"):
            return 0, level - 1
        self._within("depth", level, self.limits.max_depth)
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) or name not in parent.fields:
            return 0, level
        definition = parent.fields[name]
        field_type = get_named_type(definition.type)
        own = FIELD_COSTS.get((parent.name, name), 0 if is_leaf_type(field_type) else 1)
        if node.selection_set is None:
            return own, level
        child_cost, depth = self._selection_set(node.selection_set, field_type, level + 1)
        paged = any(a in definition.args for a in _PAGE_ARGUMENTS)
        cost = own + _multiplier(node, paged) * child_cost
        self._within("cost", cost, self.limits.max_cost)
        return cost, depth

    @staticmethod
    def _within(what: str, value: int, limit: int) -> None:
        # Costs and depths only grow towards the operation (multipliers are at least 1), so a part
        # past a limit means the whole is: stop here.
        if value > limit:
            raise _LimitPassed(what, value, limit)


def _count_aliases(document: DocumentNode) -> int:
    """Aliases as written in the document (each field node once, fragments not expanded)."""
    count = 0
    stack: list[SelectionSetNode] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode) and selection.alias is not None:
                count += 1
            inner = getattr(selection, "selection_set", None)
            if inner is not None:
                stack.append(inner)
    return count


def _multiplier(node: FieldNode, paged: bool) -> int:
    for argument in node.arguments or ():
        if argument.name.value in _PAGE_ARGUMENTS:
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(1, min(int(value.value), MAX_PAGE_SIZE))
            if isinstance(value, VariableNode):
                return MAX_PAGE_SIZE
    return DEFAULT_PAGE_SIZE if paged else 1
