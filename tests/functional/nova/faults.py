"""Faults made at the HTTP boundary between openstacksdk and Nova, and nowhere else.

``FaultInjector`` is a requests transport adapter mounted on the plugin's
HTTP session. Requests it does not match go to Nova unchanged (through the
usual adapter, which wsgi-intercept serves from the in-process API). A
matched request fails in one of the two ways a network fails a client:

* ``status``: an answer such as 503 from in front of Nova (a load balancer
  with no healthy backend); the request never reaches Nova;
* ``drop``: the request reaches Nova and is carried out, then the connection
  drops before the answer arrives (``requests.ConnectionError``, which
  keystoneauth turns into ``ConnectFailure``): the client cannot know.

It records every request, and which of them reached Nova, so that tests can
count what Nova was really asked to do.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter


@dataclass
class Rule:
    method: str
    path: str  # a regular expression searched in the URL path
    body: str | None = None  # a substring of the request body
    kind: str = 'status'  # status | drop
    status: int = 503
    times: int = 1  # how many matching requests fail; then they pass
    hits: int = 0

    def matches(self, request: requests.PreparedRequest) -> bool:
        if request.method != self.method or not re.search(self.path, request.path_url):
            return False
        if self.body is not None:
            body = request.body or b''
            if isinstance(body, bytes):
                body = body.decode(errors='replace')
            return self.body in body
        return True


@dataclass
class Seen:
    method: str
    path: str
    body: str
    reached_nova: bool
    fault: str | None


class FaultInjector(HTTPAdapter):
    def __init__(self):
        super().__init__()
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def add(self, **rule) -> Rule:
        r = Rule(**rule)
        self.rules.append(r)
        return r

    def mount_on(self, session: requests.Session) -> None:
        session.mount('http://', self)
        session.mount('https://', self)

    def send(self, request, **kwargs):
        with self._lock:
            rule = next((r for r in self.rules if r.hits < r.times and r.matches(request)), None)
            if rule is not None:
                rule.hits += 1
        body = request.body.decode(errors='replace') if isinstance(request.body, bytes) \
            else (request.body or '')
        if rule is not None and rule.kind == 'status':
            self._record(request, body, False, f'{rule.status}')
            return _response(request, rule.status)
        response = super().send(request, **kwargs)
        if rule is not None and rule.kind == 'drop':
            self._record(request, body, True, 'drop')
            response.close()
            raise requests.ConnectionError(
                'Connection aborted.', request=request)
        self._record(request, body, True, None)
        return response

    def _record(self, request, body, reached, fault):
        with self._lock:
            self.seen.append(Seen(request.method, request.path_url, body, reached, fault))

    def live_migrate_posts(self, server_id: str, reached_nova: bool | None = None) -> list[Seen]:
        out = [s for s in self.seen if s.method == 'POST'
               and s.path.endswith(f'/servers/{server_id}/action') and 'os-migrateLive' in s.body]
        if reached_nova is not None:
            out = [s for s in out if s.reached_nova == reached_nova]
        return out


def _response(request, status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = {503: 'Service Unavailable', 502: 'Bad Gateway'}.get(status, 'Error')
    response.url = request.url
    response.request = request
    response.headers['Content-Type'] = 'application/json'
    response._content = json.dumps({'message': 'injected at the HTTP boundary',
                                    'code': status}).encode()
    return response
