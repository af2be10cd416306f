"""Hypothesis strategies from the JSON Schemas of the API's requests.

Covers the subset of JSON Schema the request schemas use (objects with
properties, required and additionalProperties; min/maxProperties; strings with
length limits, a pattern or an enum; integers and numbers with bounds; booleans; arrays with
item limits and uniqueness). hypothesis-jsonschema does the same in general but
does not run with the Hypothesis this project pins; a schema outside the subset
raises, so that it cannot be silently half-generated.
"""

from __future__ import annotations

from hypothesis import strategies as st

KNOWN = {'type', 'properties', 'required', 'additionalProperties', 'minProperties',
         'maxProperties', 'minLength', 'maxLength', 'pattern', 'enum', 'minimum', 'maximum',
         'items', 'minItems', 'maxItems', 'uniqueItems'}


def from_schema(schema: dict) -> st.SearchStrategy:
    unknown = set(schema) - KNOWN
    if unknown:
        raise ValueError(f'schema keywords not covered: {sorted(unknown)}')
    if 'enum' in schema:
        return st.sampled_from(schema['enum'])
    kind = schema.get('type')
    if kind == 'boolean':
        return st.booleans()
    if kind == 'integer':
        return st.integers(schema.get('minimum'), schema.get('maximum'))
    if kind == 'number':
        return st.integers(schema.get('minimum'), schema.get('maximum')) | st.floats(
            schema.get('minimum'), schema.get('maximum'), allow_nan=False)
    if kind == 'string':
        return _string(schema)
    if kind == 'array':
        return st.lists(from_schema(schema['items']), min_size=schema.get('minItems', 0),
                        max_size=min(schema.get('maxItems', 5), 5),
                        unique=bool(schema.get('uniqueItems')))
    if kind == 'object':
        return _object(schema)
    raise ValueError(f'schema type not covered: {kind!r}')


def _string(schema):
    low, high = schema.get('minLength', 0), min(schema.get('maxLength', 40), 40)
    if 'pattern' in schema:
        return st.from_regex(schema['pattern'], fullmatch=True).filter(
            lambda s: low <= len(s) <= schema.get('maxLength', 10 ** 6))
    return st.text(min_size=low, max_size=high)


def _object(schema):
    properties = schema.get('properties', {})
    required = set(schema.get('required', ()))
    optional = sorted(set(properties) - required)
    low = schema.get('minProperties', 0)
    high = schema.get('maxProperties', len(properties))

    @st.composite
    def build(draw):
        names = sorted(required) + [n for n in optional if draw(st.booleans())]
        if len(names) < low:
            names += draw(st.lists(st.sampled_from(optional), min_size=low - len(names),
                                   max_size=low - len(names), unique=True))
        names = sorted(set(names))[:max(high, len(required))]
        return {n: draw(from_schema(properties[n])) for n in names}
    return build()
