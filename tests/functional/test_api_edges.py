"""slm-api at its edges, over real HTTP: bytes no client library would send, slow clients.

The real WSGI application is served by slm-api's own server (slm_plugin.cmd.api)
on loopback, on SQLite (MariaDB for the policies), and spoken to through raw
sockets, so that what is tested is what a client on the wire gets: invalid UTF-8 in the path and the
query string, JSON nested 10,000 deep, duplicate keys, a negative or absurd
Content-Length, a body that stops halfway, connections that send nothing,
HEAD and OPTIONS, the Allow header of every 405, a forged Host header, and
project-scoped policies. As in test_api.py, a recorder stands in for the
engines' RPC API (nothing here runs a job).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import webob

from slm_plugin.cmd.api import make_server
from slm_plugin.db import api as db
from tests.functional.test_api import BASE, MEMBER, Client, _conf

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]

SOCKET_TIMEOUT_S = 1.0  # the server's [api] client_socket_timeout in these tests


class Server:
    """The API on a loopback port, spoken to with raw HTTP/1.1 requests."""

    def __init__(self, client, timeout=SOCKET_TIMEOUT_S):
        self.client = client
        self.httpd = make_server(client.app, '127.0.0.1', 0, timeout=timeout)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    def connect(self, timeout=10.0):
        return socket.create_connection(('127.0.0.1', self.port), timeout=timeout)

    def send(self, raw: bytes, timeout=10.0):
        """Send raw bytes, read the answer until the server closes; (status, headers, body)."""
        with self.connect(timeout) as sock:
            sock.sendall(raw)
            return _read_response(sock)

    def request(self, method, path, body: bytes | None = None, headers=None):
        lines = [f'{method} {path} HTTP/1.1', f'Host: 127.0.0.1:{self.port}',
                 'Connection: close']
        for name, value in (headers or {}).items():
            lines.append(f'{name}: {value}')
        if body is not None:
            lines += ['Content-Type: application/json', f'Content-Length: {len(body)}']
        return self.send(('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + (body or b''))


def _read_response(sock):
    data = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    status_line, *header_lines = head.decode('latin-1').split('\r\n')
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _json_error(status, headers, body, code):
    """The API's own error document, not a server's plain-text page."""
    assert status == code, (status, headers, body)
    assert headers['content-type'].startswith('application/json'), (headers, body)
    error = json.loads(body)['error']
    assert error['code'] == code
    return error['message']


@pytest.fixture
def client(tmp_path, sqlite_url):
    # SQLite: what is tested here happens before the database; the policy test,
    # which reads the job's project back, runs on MariaDB
    c = Client(_conf(tmp_path, sqlite_url), sqlite_url)
    yield c
    c.db.dispose_pool()


@pytest.fixture
def server(client):
    s = Server(client)
    yield s
    s.close()


def _create(server, group='web', headers=None):
    body = json.dumps({'group_migration': {'group': group}}).encode()
    status, _, answer = server.request('POST', BASE, body, headers)
    assert status == 202, answer
    return json.loads(answer)['group_migration']['id']


# -- item 2: invalid UTF-8 percent-escapes ----------------------------------------------------


@pytest.mark.parametrize('method, path', [
    ('GET', f'{BASE}/%FF%FE'),
    ('GET', f'{BASE}/%FF%FE/events'),
    ('POST', f'{BASE}/%FF%FE/abort'),
    ('GET', '/v1/%C3%28'),
    ('DELETE', f'{BASE}/%FF'),
])
def test_a_path_that_is_not_utf8_is_a_json_400(server, method, path):
    message = _json_error(*server.request(method, path), 400)
    assert 'path is not UTF-8' in message


@pytest.mark.parametrize('query', ['status=%FF', 'marker=%FF%FE', 'group=%C3%28',
                                   '%FF=web', 'limit=1&group=%ED%A0%80'])
def test_a_query_string_that_is_not_utf8_is_a_json_400(server, query):
    message = _json_error(*server.request('GET', f'{BASE}?{query}'), 400)
    assert 'query string is not UTF-8' in message


@pytest.mark.parametrize('query', ['status=running&status=failed', 'limit=1&limit=2',
                                   'group=web&marker=x&group=db'])
def test_a_query_parameter_given_twice_is_a_400(server, query):
    message = _json_error(*server.request('GET', f'{BASE}?{query}'), 400)
    assert message.startswith('Query parameter(s) given more than once: ')


# -- item 3 and 8: bodies -------------------------------------------------------------------


@pytest.mark.parametrize('depth', [33, 900, 10_000, 30_000])
def test_json_nested_too_deep_is_a_400(server, depth):
    body = ('{"group_migration": {"group": ' + '[' * depth + ']' * depth + '}}').encode()
    message = _json_error(*server.request('POST', BASE, body), 400)
    assert 'nested deeper than 32 levels' in message
    assert server.client.announced.jobs == []


def test_a_key_given_twice_is_a_400_naming_the_key(server):
    body = b'{"group_migration": {"group": "web", "options": {"dry_run": true, "dry_run": false}}}'
    message = _json_error(*server.request('POST', BASE, body), 400)
    assert message == ("Malformed request body: the key 'dry_run' is given more than once "
                       'in an object.')
    body = b'{"group_migration": {"group": "db"}, "group_migration": {"group": "web"}}'
    assert "'group_migration'" in _json_error(*server.request('POST', BASE, body), 400)
    assert server.client.announced.jobs == []
    assert db.list_jobs(server.client.context()) == []


@pytest.mark.parametrize('name', ['web\n', 'web\r\n', 'we\nb', '\nweb', 'web\t', 'web\n\n'])
def test_names_with_line_ends_or_spaces_at_an_end_are_refused(server, name):
    for fields in ({'group': name}, {'group': 'web', 'target': {'availability_zone': name}},
                   {'group': 'web', 'target': {'hosts': ['b-1', name]}}):
        body = json.dumps({'group_migration': fields}).encode()
        message = _json_error(*server.request('POST', BASE, body), 400)
        assert 'Invalid input for field group_migration.' in message
    assert server.client.announced.jobs == []


# -- item 4: Content-Length, slow and silent clients -----------------------------------------


@pytest.mark.parametrize('length', ['-1', '+5', 'abc', '1e3', ' ', '0x10', '99999999999999999999'])
def test_an_invalid_content_length_is_a_400_at_once(server, length):
    raw = (f'POST {BASE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
           f'Content-Length: {length}\r\n\r\n{{"group_migration": {{"group": "web"}}}}')
    started = time.monotonic()
    status, headers, body = server.send(raw.encode(), timeout=10)
    if length == ' ':  # a blank header is no header: an empty body
        assert 'it is empty' in _json_error(status, headers, body, 400)
    else:
        assert 'Invalid Content-Length' in _json_error(status, headers, body, 400)
    assert time.monotonic() - started < SOCKET_TIMEOUT_S  # not after a timeout
    # also on a GET, which has no body to read
    raw = f'GET {BASE} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n'
    status, headers, body = server.send(raw.encode(), timeout=10)
    assert status == 400 if length != ' ' else status == 200


def test_a_declared_body_too_large_is_refused_before_it_is_read(server):
    raw = (f'POST {BASE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
           f'Content-Length: {10 ** 9}\r\n\r\n{{"group')
    started = time.monotonic()
    message = _json_error(*server.send(raw.encode()), 413)
    assert message == 'Request body larger than 65536 bytes.'
    assert time.monotonic() - started < SOCKET_TIMEOUT_S


def test_the_body_size_limit_is_configurable(tmp_path, mariadb_url):
    client = Client(_conf(tmp_path, mariadb_url, api={'max_request_body_size': 1024}),
                    mariadb_url)
    server = Server(client)
    try:
        body = json.dumps({'group_migration': {'group': 'web', 'reason': 'r' * 200}}).encode()
        assert server.request('POST', BASE, body)[0] == 202
        body = json.dumps({'group_migration': {'group': 'db', 'reason': 'r' * 1100}}).encode()
        message = _json_error(*server.request('POST', BASE, body), 413)
        assert message == 'Request body larger than 1024 bytes.'
    finally:
        server.close()
        client.db.dispose_pool()


def test_a_body_that_stops_halfway_times_out_with_a_408(server):
    raw = (f'POST {BASE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
           f'Content-Length: 100\r\n\r\n{{"group_migration": ').encode()
    started = time.monotonic()
    message = _json_error(*server.send(raw, timeout=10), 408)
    took = time.monotonic() - started
    assert message == 'The request body did not arrive in time.'
    assert SOCKET_TIMEOUT_S * 0.9 <= took < SOCKET_TIMEOUT_S + 5
    assert server.client.announced.jobs == []


def test_a_body_cut_short_by_the_client_is_a_400(server):
    raw = (f'POST {BASE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
           f'Content-Length: 100\r\n\r\n{{"group_migration": ').encode()
    with server.connect() as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # half-closed: no more bytes will come
        status, headers, body = _read_response(sock)
    assert 'ended before its Content-Length' in _json_error(status, headers, body, 400)


def test_silent_and_half_open_connections_are_closed_after_the_timeout(server):
    n = 100
    socks = [server.connect() for _ in range(n)]
    try:
        for i, sock in enumerate(socks):
            if i % 2:  # half of them start a request and stop in its headers
                sock.sendall(f'GET {BASE} HTTP/1.1\r\nHost: x\r\n'.encode())
        started = time.monotonic()
        closed = 0
        for sock in socks:
            sock.settimeout(max(0.1, SOCKET_TIMEOUT_S + 10 - (time.monotonic() - started)))
            try:
                closed += sock.recv(1024) == b''  # the server closed it
            except TimeoutError:
                pass
        took = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    assert closed == n
    assert took < SOCKET_TIMEOUT_S + 10
    # and the server still answers
    assert server.request('GET', BASE)[0] == 200


# -- item 8: methods ------------------------------------------------------------------------


def test_every_405_says_which_methods_are_allowed(server):
    job_id = _create(server)
    for method, path, allow in (
            ('DELETE', BASE, 'GET, POST, HEAD, OPTIONS'),
            ('PUT', BASE, 'GET, POST, HEAD, OPTIONS'),
            ('POST', f'{BASE}/{job_id}', 'GET, HEAD, OPTIONS'),
            ('DELETE', f'{BASE}/{job_id}', 'GET, HEAD, OPTIONS'),
            ('POST', f'{BASE}/{job_id}/events', 'GET, HEAD, OPTIONS'),
            ('GET', f'{BASE}/{job_id}/abort', 'POST, OPTIONS'),
            ('HEAD', f'{BASE}/{job_id}/abort', 'POST, OPTIONS'),
            ('POST', '/', 'GET, HEAD, OPTIONS'),
            ('PATCH', '/v1', 'GET, HEAD, OPTIONS')):
        status, headers, body = server.request(method, path)
        assert status == 405, (method, path, body)
        assert headers.get('allow') == allow, (method, path, headers)
        if method != 'HEAD':
            assert method in _json_error(status, headers, body, 405)


def test_options_lists_the_methods_of_a_path(server):
    job_id = _create(server)
    for path, allow in ((BASE, 'GET, POST, HEAD, OPTIONS'),
                        (f'{BASE}/{job_id}', 'GET, HEAD, OPTIONS'),
                        (f'{BASE}/{job_id}/abort', 'POST, OPTIONS'),
                        ('/', 'GET, HEAD, OPTIONS')):
        status, headers, body = server.request('OPTIONS', path)
        assert (status, headers.get('allow'), body) == (204, allow, b''), path
    assert server.request('OPTIONS', '/v2/things')[0] == 404


def test_head_answers_as_get_without_the_body(server):
    job_id = _create(server)
    for path in ('/', '/v1', BASE, f'{BASE}/{job_id}', f'{BASE}/{job_id}/events',
                 f'{BASE}?status=pending'):
        get_status, get_headers, get_body = server.request('GET', path)
        status, headers, body = server.request('HEAD', path)
        assert (status, body) == (get_status, b''), path
        assert headers['content-type'] == get_headers['content-type']
        assert headers['content-length'] == str(len(get_body)), path
    assert server.request('HEAD', f'{BASE}/2b0d0a4c-8b8e-4f59-9f1f-8f4d7d6b5a11')[0] == 404
    # HEAD is a read like GET: the same policy
    assert server.request('HEAD', f'{BASE}/{job_id}', headers=MEMBER)[0] == 403


# -- item 7: the Host header ----------------------------------------------------------------


def test_links_follow_the_configured_public_endpoint_not_the_host_header(tmp_path,
                                                                         mariadb_url):
    endpoint = 'https://cloud.example.com/slm'
    client = Client(_conf(tmp_path, mariadb_url, api={'public_endpoint': endpoint + '/'}),
                    mariadb_url)
    server = Server(client)
    try:
        body = json.dumps({'group_migration': {'group': 'web'}}).encode()
        raw = (f'POST {BASE} HTTP/1.1\r\nHost: evil.example\r\n'
               f'Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n')
        status, headers, answer = server.send(raw.encode() + body)
        assert status == 202, answer
        job = json.loads(answer)['group_migration']
        assert headers['location'] == f'{endpoint}{BASE}/{job["id"]}'
        assert job['links'] == [{'rel': 'self', 'href': f'{endpoint}{BASE}/{job["id"]}'}]
        for path in (f'{BASE}/{job["id"]}', f'{BASE}?limit=1'):
            status, _, answer = server.send(
                f'GET {path} HTTP/1.1\r\nHost: evil.example\r\n\r\n'.encode())
            assert b'evil.example' not in answer and endpoint.encode() in answer, answer
    finally:
        server.close()
        client.db.dispose_pool()


@pytest.mark.parametrize('parsing, expected', [
    ('false', 'http://x'),  # the default: forwarded headers are anybody's, ignored
    ('true', 'https://cloud.example.com/slm'),  # behind a proxy that sets them
])
def test_forwarded_headers_count_only_behind_a_proxy(tmp_path, sqlite_url, parsing, expected):
    client = Client(_conf(tmp_path, sqlite_url,
                          oslo_middleware={'enable_proxy_headers_parsing': parsing}),
                    sqlite_url)
    server = Server(client)
    try:
        body = json.dumps({'group_migration': {'group': 'web'}}).encode()
        status, headers, answer = server.send(
            (f'POST {BASE} HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n'
             f'X-Forwarded-Host: cloud.example.com\r\nX-Forwarded-Prefix: /slm\r\n'
             f'Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n'
             ).encode() + body)
        assert status == 202, answer
        job_id = json.loads(answer)['group_migration']['id']
        assert headers['location'] == f'{expected}{BASE}/{job_id}'
    finally:
        server.close()
        client.db.dispose_pool()


# -- item 5: policy against the job's project ------------------------------------------------


PROJECT_RULES = {
    'slm:group_migration:create': 'role:member',
    'slm:group_migration:list': 'role:member',
    'slm:group_migration:show': 'role:member and project_id:%(project_id)s',
    'slm:group_migration:abort': 'role:member and project_id:%(project_id)s',
}


def test_project_scoped_rules_check_the_jobs_project(tmp_path, mariadb_url):
    policy_file = tmp_path / 'policy.yaml'
    policy_file.write_text(''.join(f'"{k}": "{v}"\n' for k, v in PROJECT_RULES.items()))
    client = Client(_conf(tmp_path, mariadb_url, oslo_policy={'policy_file': str(policy_file)}),
                    mariadb_url)
    owner = dict(MEMBER)  # p-1
    other = dict(MEMBER, **{'X-Project-Id': 'p-2', 'X-User-Id': 'u-2'})
    try:
        status, body = client.create(group='web', headers=owner)
        assert status == 202, body
        job_id = body['group_migration']['id']
        for method, path in (('GET', f'{BASE}/{job_id}'), ('GET', f'{BASE}/{job_id}/events'),
                             ('POST', f'{BASE}/{job_id}/abort')):
            status, body = client(method, path, headers=other)
            assert status == 403, (method, path, body)
        assert db.get_job(client.context(), job_id).status == 'pending'  # not aborted
        assert [e.kind for e in db.list_events(client.context(), job_id)] == ['job.created']
        # the job's own project may
        assert client('GET', f'{BASE}/{job_id}', headers=owner)[0] == 200
        assert client('GET', f'{BASE}/{job_id}/events', headers=owner)[0] == 200
        status, body = client('POST', f'{BASE}/{job_id}/abort', headers=owner)
        assert status == 202 and body['group_migration']['status'] == 'aborted'
        job = db.get_job(client.context(), job_id)
        assert (job.project_id, job.user_id) == ('p-1', 'u-1')
        # a list shows a member its own project's jobs; an administrator every project's
        status, body = client.create(group='db', headers=other)
        assert status == 202, body
        theirs = body['group_migration']['id']

        def listed(headers=None):
            status, body = client('GET', BASE, headers=headers)
            assert status == 200, body
            return [j['id'] for j in body['group_migrations']]
        assert listed(owner) == [job_id]
        assert listed(other) == [theirs]
        admin = dict(MEMBER, **{'X-Roles': 'admin,member', 'X-Project-Id': 'p-9'})
        assert listed(admin) == [job_id, theirs]
    finally:
        client.db.dispose_pool()


# -- item 4 under other WSGI servers ---------------------------------------------------------


class _FailingInput:
    """wsgi.input as uWSGI (or mod_wsgi) gives it when the client stops or goes.

    The one stand-in of this module: those servers are not part of the test
    environment, and what their input raises is their own (uWSGI 2.0:
    ``OSError: timeout during read(100) on wsgi.input`` after its
    socket-timeout, seen by hand under the settings doc/source/install/manual.rst
    gives; mod_wsgi: ``OSError: request data read error``).
    """

    def __init__(self, message):
        self.message = message

    def read(self, size=-1):
        raise OSError(self.message)

    readline = read


@pytest.mark.parametrize('message, code, expected', [
    ('timeout during read(100) on wsgi.input', 408, 'The request body did not arrive in time.'),
    ('request data read error', 400,
     'The request body could not be read: request data read error.'),
])
def test_a_body_the_wsgi_server_cannot_read_is_no_500(client, message, code, expected):
    req = webob.Request.blank(BASE, method='POST', headers={'Content-Length': '100'},
                              environ={'wsgi.input': _FailingInput(message)})
    req.content_type = 'application/json'
    response = req.get_response(client.app)
    assert response.status_int == code, response.text
    assert response.json['error']['message'] == expected
    assert client.announced.jobs == []
