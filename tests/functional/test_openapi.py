"""The OpenAPI description of /v1 (doc/source/api/openapi.yaml) against the running API.

* the document is valid OpenAPI 3.1;
* its create request schema is the one the API validates with (no drift either way);
* every route the API serves is described, with its methods, and nothing else is;
* real answers (SQLite, the simulated backend) match the response schemas;
* bodies generated from the request schema (``schema_strategies``), and arbitrary
  JSON, never get a 500 or an answer the document does not describe.
"""

from __future__ import annotations

import copy
import json
import pathlib

import hypothesis
import jsonschema
import pytest
import yaml
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_spec

from slm_plugin import planning
from slm_plugin.api import schemas
from tests.functional.schema_strategies import from_schema
from tests.functional.test_api import BASE, Client, _conf

pytestmark = [pytest.mark.functional, pytest.mark.timeout(600)]

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / 'doc' / 'source' / 'api' / 'openapi.yaml'


@pytest.fixture(scope='module')
def spec():
    return yaml.safe_load(DOCUMENT.read_text())


@pytest.fixture(scope='module')
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('openapi')
    url = f'sqlite:///{tmp / "slm.sqlite"}'
    client = Client(_conf(tmp, url), url)
    yield client
    client.db.dispose_pool()


def _resolved(spec, node):
    """node with every local $ref replaced by what it points at (the document has no cycle)."""
    if isinstance(node, dict):
        if '$ref' in node:
            target = spec
            for part in node['$ref'].lstrip('#/').split('/'):
                target = target[part]
            return _resolved(spec, target)
        return {k: _resolved(spec, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolved(spec, v) for v in node]
    return node


def _without(node, key):
    if isinstance(node, dict):
        return {k: _without(v, key) for k, v in node.items() if k != key}
    if isinstance(node, list):
        return [_without(v, key) for v in node]
    return node


def _response_schema(spec, path, method, status):
    answers = spec['paths'][path][method]['responses']
    assert str(status) in answers, f'{method.upper()} {path}: {status} is not described'
    content = _resolved(spec, answers[str(status)]).get('content', {})
    return content.get('application/json', {}).get('schema')


def _check(spec, path, method, status, body):
    schema = _response_schema(spec, path, method, status)
    if schema is not None:
        jsonschema.validate(body, schema)


def test_the_document_is_valid_openapi(spec):
    validate_spec(spec)


def test_the_create_schema_is_the_one_the_api_validates_with(spec):
    documented = _resolved(spec, spec['components']['schemas']['CreateRequest'])
    served = _without(schemas.create(planning.names()), 'x-error')
    assert documented == served


def test_every_route_is_described_and_nothing_else(spec, api):
    """Asked as a client would: a documented method is served (no 404 or 405), any other
    method of a documented path is a 405, and a path the document does not have is a 404."""
    methods = ('get', 'post', 'put', 'delete', 'patch')
    for path, operations in spec['paths'].items():
        concrete = path.replace('{job_id}', 'no-such-job')
        for method in methods:
            status, body = api(method.upper(), concrete)
            if method in operations:
                assert status not in (405, 500), (method, path, status, body)
                if '{job_id}' not in path:
                    assert status != 404, (method, path, body)
            else:
                assert status == 405, (method, path, status, body)
    for path in ('/v2', '/v1/group-migrations/x/y', '/v1/servers'):
        assert api('GET', path)[0] == 404, path


def test_real_answers_match_the_document(spec, api):
    status, body = api('GET', '/')
    _check(spec, '/', 'get', status, body)
    status, body = api('GET', '/v1')
    _check(spec, '/v1', 'get', status, body)
    status, body = api.create(group='web', target={'availability_zone': 'dc-b'},
                              options={'dry_run': True})
    assert status == 200, body
    _check(spec, BASE, 'post', status, body)
    status, body = api.create(group='web', target={'availability_zone': 'dc-b'})
    assert status == 202, body
    _check(spec, BASE, 'post', status, body)
    job_id = body['group_migration']['id']
    for path, method in ((f'{BASE}/{job_id}', 'get'), (f'{BASE}/{job_id}/events', 'get'),
                         (BASE + '?limit=1', 'get'), (f'{BASE}/{job_id}/abort', 'post')):
        status, body = api(method.upper(), path)
        template = path.split('?')[0].replace(job_id, '{job_id}')
        _check(spec, template, method, status, body)
    status, body = api('GET', f'{BASE}/no-such-job')
    assert status == 404
    _check(spec, BASE + '/{job_id}', 'get', status, body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)


def _mutations(schema):
    """Bodies near the valid ones: a valid body with one field replaced by any JSON."""
    def mutate(pair):
        body, junk = pair
        body = copy.deepcopy(body)
        inner = body['group_migration']
        key = sorted(inner)[len(json.dumps(junk)) % len(inner)]
        inner[key] = junk
        return body
    return st.tuples(from_schema(schema), _json).map(mutate)


def _post_checked(spec, api, body):
    status, answer = api('POST', BASE, body=body)
    assert status != 500, answer
    _check(spec, BASE, 'post', status, answer)
    return status


def test_generated_requests_never_get_a_500_or_an_undescribed_answer(spec, api):
    schema = _without(schemas.create(planning.names()), 'x-error')
    # generated names rarely name the scenario's groups: let some of them do
    named = from_schema(schema).map(_aimed)
    seen = set()

    @hypothesis.settings(max_examples=60, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(st.one_of(named, _mutations(schema), _json))
    def run(body):
        seen.add(_post_checked(spec, api, body))

    run()
    assert 400 in seen, seen  # the property did exercise refusals
    assert seen <= {200, 202, 400, 404, 409, 413, 415, 503}, seen


def _aimed(body):
    body = copy.deepcopy(body)
    inner = body['group_migration']
    if len(json.dumps(inner)) % 2:
        inner['group'] = 'web'
        inner.setdefault('options', {})['dry_run'] = True
    return body
