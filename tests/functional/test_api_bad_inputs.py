"""A campaign of bad requests against the real API over HTTP: no 500, no hang, JSON errors.

Some 290 requests a careful operator or a clumsy client could send (issue 13):
percent-escapes that are not UTF-8 in every path and query parameter, odd
query strings, every odd Content-Length, JSON nested up to 30,000 deep,
duplicate keys, NaN, numbers too large, other encodings, names with line ends
and odd spaces, content types, every method on every path, forged headers.
Each must be answered (within the client's 15 s), never with a 5xx, and every
error but a 405 (whose body a HEAD lacks) with the API's JSON error document.
The real application in slm-api's server on SQLite, as in test_api_edges.py.
"""

from __future__ import annotations

import json

import pytest

from tests.functional.test_api import BASE, Client, _conf
from tests.functional.test_api_edges import Server

pytestmark = [pytest.mark.functional, pytest.mark.timeout(300)]


@pytest.fixture
def client(tmp_path, sqlite_url):
    c = Client(_conf(tmp_path, sqlite_url), sqlite_url)
    yield c
    c.db.dispose_pool()

JOB = '2b0d0a4c-8b8e-4f59-9f1f-8f4d7d6b5a11'
BAD_UTF8 = ['%FF', '%FF%FE', '%C3%28', '%ED%A0%80', '%F4%90%80%80', '%C0%AF', '%E2%82', '%80']


def _request(method, path, body=None, headers=None, ctype='application/json'):
    lines = [f'{method} {path} HTTP/1.1', 'Host: x', 'Connection: close']
    lines += [f'{k}: {v}' for k, v in (headers or {}).items()]
    if body is not None:
        if ctype:
            lines.append(f'Content-Type: {ctype}')
        if 'Content-Length' not in (headers or {}):
            lines.append(f'Content-Length: {len(body)}')
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + (body or b'')


def _bodies():
    def group_migration(**fields):
        return json.dumps({'group_migration': fields}).encode()
    out = {
        'dup top': b'{"group_migration": {"group": "db"}, "group_migration": {"group": "web"}}',
        'dup dry_run': b'{"group_migration": {"group": "web", "options": {"dry_run": true, '
                       b'"dry_run": false}}}',
        'NaN': b'{"group_migration": {"group": "web", "options": {"allowed_downtime_ms": NaN}}}',
        'Infinity': b'{"group_migration": {"group": "web", "options": '
                    b'{"allowed_downtime_ms": Infinity}}}',
        '1e400': b'{"group_migration": {"group": "web", "options": '
                 b'{"allowed_downtime_ms": 1e400}}}',
        'int of 5000 digits': b'{"group_migration": {"group": "web", "options": '
                              b'{"allowed_downtime_ms": ' + b'9' * 5000 + b'}}}',
        'latin-1': '{"group_migration": {"group": "w\xe9b"}}'.encode('latin-1'),
        'NUL': b'{"group_migration": {"group": "web\\u0000"}}',
        'lone surrogate': b'{"group_migration": {"group": "\\ud800"}}',
        'trailing garbage': b'{"group_migration": {"group": "web"}} x',
        'two documents': b'{"group_migration": {"group": "web"}}{"a": 1}',
        'null': b'null', 'number': b'7', 'string': b'"web"', 'array': b'[]', 'object': b'{}',
        'too big': b'{"group_migration": {"group": "' + b'x' * 70000 + b'"}}',
        'reason 256': group_migration(group='web', reason='r' * 256),
        'hosts 1001': group_migration(group='web', target={'hosts': [f'h{i}'
                                                                     for i in range(1001)]}),
        'two targets': group_migration(group='web', target={'hosts': ['b-1'], 'aggregate': 'x'}),
        'strategy': group_migration(group='web', strategy='fastest'),
        'float ms': group_migration(group='web', options={'allowed_downtime_ms': 1.5}),
        'bool ms': group_migration(group='web', options={'allowed_downtime_ms': True}),
    }
    for depth in (33, 100, 999, 1000, 5000, 10_000, 30_000):
        out[f'[] {depth} deep'] = ('{"group_migration": {"group": ' + '[' * depth
                                   + ']' * depth + '}}').encode()
        out[f'{{}} {depth} deep'] = ('{"group_migration": ' + '{"a": ' * depth + '1'
                                     + '}' * depth + '}').encode()
    for name in ('web\n', 'web\r\n', 'we\nb', '\nweb', ' web', 'web ', 'web\t', '\u00a0web',
                 'web\u2028', 'x' * 256, ''):
        out[f'group {name!r}'] = group_migration(group=name)
        out[f'zone {name!r}'] = group_migration(group='web', target={'availability_zone': name})
        out[f'host {name!r}'] = group_migration(group='web', target={'hosts': [name]})
    return out


def _cases():
    cases = []
    for esc in BAD_UTF8:
        for method, path in (('GET', f'{BASE}/{esc}'), ('GET', f'{BASE}/{esc}/events'),
                             ('POST', f'{BASE}/{esc}/abort'), ('GET', f'/v1/{esc}'),
                             ('GET', f'/{esc}'), ('DELETE', f'{BASE}/{esc}'),
                             ('OPTIONS', f'{BASE}/{esc}'), ('HEAD', f'{BASE}/{esc}')):
            cases.append((f'{method} {path}', _request(method, path)))
        for param in ('status', 'marker', 'group', 'limit', esc):
            cases.append((f'?{param}={esc}', _request('GET', f'{BASE}?{param}={esc}')))
    for query in ('colour=blue', 'limit=-1', 'limit=1e3', 'limit=' + '9' * 50,
                  'marker=' + 'x' * 10000, 'group=' + 'g' * 10000, 'status=', 'limit=',
                  'status=running&status=failed', '&&&', '=', 'limit=%00', 'group=%00'):
        cases.append((f'?{query[:30]}', _request('GET', f'{BASE}?{query}')))
    for length in ('-1', '+5', 'abc', '1e3', '0x10', '9' * 20, '1,1', '-0', '1000000000'):
        cases.append((f'POST Content-Length {length}', _request(
            'POST', BASE, b'{"group_migration": {"group": "web"}}', {'Content-Length': length})))
        cases.append((f'GET Content-Length {length}',
                       _request('GET', BASE, None, {'Content-Length': length})))
    for name, body in _bodies().items():
        cases.append((f'body {name}', _request('POST', BASE, body)))
    dry_run = b'{"group_migration": {"group": "db", "options": {"dry_run": true}}}'
    for ctype in ('text/plain', 'application/x-www-form-urlencoded',
                  'multipart/form-data; boundary=x', ''):
        cases.append((f'Content-Type {ctype!r}', _request('POST', BASE, dry_run, ctype=ctype)))
    for method in ('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'FOO'):
        for path in ('/', '/v1', BASE, f'{BASE}/{JOB}', f'{BASE}/{JOB}/events',
                     f'{BASE}/{JOB}/abort', '/v2', f'{BASE}/{JOB}/x'):
            cases.append((f'{method} {path}', _request(method, path)))
    for header in ({'Host': 'evil.example'}, {'X-Forwarded-Host': 'evil.example'},
                   {'X-Roles': 'member'}, {'X-Project-Id': '%FF'}, {'X-Roles': '\xff'}):
        cases.append((f'header {header}', _request('GET', BASE, None, header)))
    return cases


def test_no_bad_request_gets_a_500_or_a_hang_or_a_non_json_error(client):
    server = Server(client)
    answers, wrong = {}, []
    try:
        cases = _cases()
        for name, raw in cases:
            try:
                status, headers, body = server.send(raw, timeout=15)
            except TimeoutError:
                wrong.append((name, 'no answer within 15 s'))
                continue
            answers[status] = answers.get(status, 0) + 1
            if status >= 500:
                wrong.append((name, status, body[:200]))
            elif status >= 400 and body and not headers.get('content-type', '').startswith(
                    'application/json'):
                wrong.append((name, status, 'not JSON', body[:200]))
    finally:
        server.close()
    print(f'{len(cases)} requests: {dict(sorted(answers.items()))}')
    assert wrong == []
    assert len(cases) > 280
    assert client.announced.jobs == []  # not one of them started a migration
