"""Input objects built by a conversion compiled once per input type, instead of Strawberry's
`convert_argument` walking the type again for every value.

Strawberry converts an argument's value by asking, at every level and for every field, which
kind of type it has (a dozen isinstance checks, the field's GraphQL name, its resolved type):
a dozen recursive calls for one `GenerateInput`, the largest part of GraphQL's own cost per
operation. What each field needs is known from the type, so here each input type gets, once, the
list of its fields with their GraphQL names and what their values need (nothing for scalars,
enums and lists of them; a list or a nested input object a conversion of its own).

The conversion is installed as the types' `from_input` (Strawberry's hook for input types that
build their own value), so every path that converts arguments (HTTP, WebSocket, SSE) uses it.
It does what `convert_argument` does, in the same order; anything else goes to Strawberry's:
`Maybe` fields, lazy types, GlobalIDs, types with a `from_input` of their own. Types with a
`Maybe` field keep Strawberry's conversion at the top, as a `from_input` turns off Strawberry's
check of explicit nulls for them (their values inside other inputs are still built here).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

from graphql import GraphQLInputObjectType, GraphQLSchema
from strawberry.relay.types import GlobalID
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import (
    InputContext,
    _is_leaf_type,
    _is_optional_leaf_type,
    convert_argument,
)
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
)
from strawberry.types.enum import has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

# (value, path of the value in the arguments, info) -> the Python value; None: the value as it is
Convert = Callable[[Any, tuple[str | int, ...], Any], Any]
Registry = Mapping[object, Any]


class _ObjectConversion:
    """One input type's: its fields' GraphQL names, Python names and conversions."""

    __slots__ = ("fields", "nulls")

    def __init__(self) -> None:
        self.nulls: dict[str, None] = {}
        self.fields: tuple[tuple[str, str, Convert | None], ...] = ()

    def build(self, cls: type, value: Mapping[str, Any], path: tuple[str | int, ...], info: Any) -> Any:
        kwargs: dict[str, Any] = self.nulls.copy()
        for name, python_name, convert in self.fields:
            if name in value:
                item = value[name]
                kwargs[python_name] = item if convert is None else convert(item, (*path, name), info)
        return cls(**kwargs)


class InputConversion:
    """The conversions of one schema's input types (they depend on its names and scalars)."""

    def __init__(self, config: StrawberryConfig, scalar_registry: Registry) -> None:
        self.config = config
        self.scalar_registry = scalar_registry
        self._objects: dict[StrawberryObjectDefinition, _ObjectConversion] = {}

    def object(self, definition: StrawberryObjectDefinition) -> _ObjectConversion:
        conversion = self._objects.get(definition)
        if conversion is None:
            # Registered before its fields are compiled: an input may contain itself.
            conversion = self._objects[definition] = _ObjectConversion()
            if definition.is_input:
                conversion.nulls = {
                    field.python_name: None
                    for field in definition.fields
                    if field.default_value is MISSING and field.default_factory is MISSING
                }
            conversion.fields = tuple(
                (
                    self.config.name_converter.from_field(field),
                    field.python_name,
                    self.of(field.resolve_type(type_definition=definition)),
                )
                for field in definition.fields
            )
        return conversion

    def of(self, type_: StrawberryType | type) -> Convert | None:
        """How a value of `type_` is converted, following `convert_argument` branch by branch;
        None when it is the value itself."""
        if isinstance(type_, (StrawberryMaybe, LazyType)):
            return self._strawberry(type_)
        if isinstance(type_, StrawberryOptional):
            return self.of(type_.of_type)  # null and UNSET are kept below
        if isinstance(type_, StrawberryList):
            return self._list(type_)
        if _is_leaf_type(type_, self.scalar_registry):
            return self._strawberry(type_) if type_ is GlobalID else None
        if has_enum_definition(type_):
            return None  # a leaf: the enum value graphql-core made
        definition: StrawberryObjectDefinition | None = getattr(type_, "__strawberry_definition__", None)
        if isinstance(definition, StrawberryObjectDefinition) and _converts_here(definition):
            build, cls = self.object(definition).build, type_

            def convert_object(value: Any, path: tuple[str | int, ...], info: Any) -> Any:
                if value is None or value is UNSET:
                    return value
                return build(cls, value, path, info)  # type: ignore[arg-type]

            return convert_object
        return self._strawberry(type_)  # a from_input of its own, or unsupported (Strawberry raises)

    def _list(self, type_: StrawberryList) -> Convert:
        skip = (GlobalID,)
        item_type = type_.of_type
        if _is_leaf_type(item_type, self.scalar_registry, skip_classes=skip) or _is_optional_leaf_type(
            item_type, self.scalar_registry, skip_classes=skip
        ):

            def copy_list(value: Any, path: tuple[str | int, ...], info: Any) -> Any:
                # A copy: graphql-core hands the same default list to every request omitting it.
                return value if value is None or value is UNSET else list(value)

            return copy_list
        convert_item = self.of(item_type)

        def convert_list(value: Any, path: tuple[str | int, ...], info: Any) -> Any:
            if value is None or value is UNSET:
                return value
            if convert_item is None:
                return list(value)
            return [convert_item(item, (*path, index), info) for index, item in enumerate(value)]

        return convert_list

    def _strawberry(self, type_: StrawberryType | type) -> Convert:
        config, registry = self.config, self.scalar_registry

        def convert(value: Any, path: tuple[str | int, ...], info: Any) -> Any:
            return convert_argument(value, type_, registry, config, info, path=path)

        return convert


# The conversions of the schemas built last, by their config: the classes (and so the hook) are
# shared by every schema built from them (tests build several).
_CONVERSIONS: OrderedDict[int, InputConversion] = OrderedDict()
_KEPT = 8


def _from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    conversion = _CONVERSIONS.get(id(context.config))
    if (
        conversion is None
        or conversion.config is not context.config
        or conversion.scalar_registry is not context.scalar_registry
    ):
        return _strawberry_object(cls, value, context)  # a schema no longer kept: as without the hook
    definition: StrawberryObjectDefinition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    return conversion.object(definition).build(cls, value, context.path, context.info)


def _converts_here(definition: StrawberryObjectDefinition) -> bool:
    """Whether this module builds the type's values (no from_input, or ours)."""
    return definition.from_input is None or definition.from_input is _from_input


def _strawberry_object(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    """Strawberry's conversion of an input object, for a context this conversion was not made for."""
    definition: StrawberryObjectDefinition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    kwargs: dict[str, Any] = {}
    if definition.is_input:
        kwargs = {
            field.python_name: None
            for field in definition.fields
            if field.default_value is MISSING and field.default_factory is MISSING
        }
    for field in definition.fields:
        name = context.config.name_converter.from_field(field)
        if name in value:
            kwargs[field.python_name] = context.convert(
                value[name], field.resolve_type(type_definition=definition), name
            )
    return cls(**kwargs)


def install(schema: GraphQLSchema, config: StrawberryConfig, scalar_registry: Registry) -> InputConversion:
    """Compile the schema's input types and make the conversion their `from_input`."""
    conversion = InputConversion(config, scalar_registry)
    _CONVERSIONS[id(config)] = conversion
    while len(_CONVERSIONS) > _KEPT:
        _CONVERSIONS.popitem(last=False)
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLInputObjectType):
            continue
        definition = (graphql_type.extensions or {}).get("strawberry-definition")
        if not isinstance(definition, StrawberryObjectDefinition) or not _converts_here(definition):
            continue
        if any(isinstance(field.type, StrawberryMaybe) for field in definition.fields):
            continue  # Strawberry's null check of Maybe fields skips types with a from_input
        conversion.object(definition)
        definition.from_input = _from_input
    return conversion
