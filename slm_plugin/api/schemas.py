"""JSON schemas of the request bodies, and validation with messages a caller can act on.

A message names the field by its path, e.g. ``Invalid input for field
group_migration.options.failure_policy: 'stop' is not one of ['abort',
'continue']``. A subschema may carry ``x-error``, a plainer message used
instead of jsonschema's.
"""

from __future__ import annotations

import jsonschema
from jsonschema import exceptions as js_exceptions

from slm_plugin import exception

# jsonschema matches patterns with re.search, where ``$`` also matches before a final
# newline ("web\n" would pass): ``(?!\n)`` after it makes it the end of the text, in
# Python as in ECMA-262 (whose ``$`` is the end already). ``.`` takes no newline, so
# none can be inside a name either.
_NAME = {'type': 'string', 'minLength': 1, 'maxLength': 255, 'pattern': r'^\S(.*\S)?$(?!\n)',
         'x-error': 'must be a name of 1 to 255 characters without leading or trailing '
                    'spaces'}

# the instant itself is parsed by planning.window, which says what is wrong with it
_INSTANT = {'type': 'string', 'minLength': 10, 'maxLength': 40,
            'pattern': r'^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+(Z|[+-][0-9:]+)?$(?!\n)',
            'x-error': 'must be an ISO 8601 instant such as 2026-12-03T18:00:00Z'}


def create(strategies) -> dict:
    """Schema of POST /v1/group-migrations."""
    return {
        'type': 'object',
        'additionalProperties': False,
        'required': ['group_migration'],
        'properties': {'group_migration': {
            'type': 'object',
            'additionalProperties': False,
            'required': ['group'],
            'properties': {
                'group': dict(_NAME, **{'x-error': 'must be the id or the name of a server '
                                                   'group'}),
                'target': {
                    'type': 'object',
                    'additionalProperties': False,
                    'minProperties': 1,
                    'maxProperties': 1,
                    'x-error': 'give exactly one of availability_zone, aggregate and hosts',
                    'properties': {
                        'availability_zone': _NAME,
                        'aggregate': _NAME,
                        'hosts': {'type': 'array', 'minItems': 1, 'maxItems': 1000,
                                  'uniqueItems': True, 'items': _NAME},
                    },
                },
                'strategy': {'type': 'string', 'enum': sorted(strategies)},
                'reason': {'type': 'string', 'minLength': 1, 'maxLength': 255,
                           'x-error': 'must be a text of 1 to 255 characters'},
                'options': {
                    'type': 'object',
                    'additionalProperties': False,
                    'properties': {
                        'allowed_downtime_ms': {'type': 'integer', 'minimum': 1,
                                                'maximum': 600000},
                        'max_bandwidth_mibps': {'type': 'number', 'minimum': 1,
                                                'maximum': 1000000,
                                                'x-error': 'must be a number of MiB/s from 1 '
                                                           'to 1000000'},
                        'failure_policy': {'type': 'string', 'enum': ['abort', 'continue']},
                        'allow_post_copy': {'type': 'boolean'},
                        'allow_auto_converge': {'type': 'boolean'},
                        'priority': {'type': 'string',
                                     'enum': ['critical', 'user', 'maintenance']},
                        'complete_by': _INSTANT,
                        'not_before': _INSTANT,
                        'dry_run': {'type': 'boolean'},
                    },
                },
            },
        }},
    }


def _path(error) -> str:
    out = ''
    for part in error.absolute_path:
        out += f'[{part}]' if isinstance(part, int) else (f'.{part}' if out else str(part))
    return out


def _message(error) -> str:
    custom = error.schema.get('x-error') if isinstance(error.schema, dict) else None
    if error.validator == 'additionalProperties' or not custom:
        custom = error.message
    path = _path(error)
    return f'Invalid input for field {path}: {custom}' if path else f'Invalid input: {custom}'


def validate(schema: dict, body) -> None:
    """Raise exception.ValidationError with one message for the most relevant problem."""
    validator = jsonschema.Draft202012Validator(schema)
    error = js_exceptions.best_match(validator.iter_errors(body))
    if error is not None:
        raise exception.ValidationError(_message(error))
