"""Runs the tests against real Nova code (tests/functional/nova), each module in its own process.

Importing Nova's test code reconfigures the interpreter for good: it picks
native threads or eventlet for the whole process, and its fixtures patch
oslo.config, logging, warnings and RPC globally. So those tests never run in
this process (tests/conftest.py keeps the directory out of collection); each
module runs in a fresh ``python -m pytest`` and its result is this test's.
Run one directly with ``SLM_NOVA_TESTS=1 .venv/bin/python -m pytest tests/functional/nova``.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOVA_TESTS = pathlib.Path(__file__).resolve().parent / 'nova'
MODULES = sorted(p.name for p in NOVA_TESTS.glob('test_*.py'))
TIMEOUT_S = 540

pytestmark = pytest.mark.functional


@pytest.mark.parametrize('module', MODULES)
def test_nova_module(module, record_property):
    env = dict(os.environ, SLM_NOVA_TESTS='1', OS_NOVA_DISABLE_EVENTLET_PATCHING='1')
    path = NOVA_TESTS / module
    cmd = [sys.executable, '-m', 'pytest', '-q', '-rfE', '-p', 'no:cacheprovider',
           '-p', 'no:warnings', str(path.relative_to(ROOT))]
    try:
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f'{module} did not finish within {TIMEOUT_S} s:\n{_tail(exc.stdout)}')
    summary = _summary(result.stdout)
    record_property('nova_tests', summary)
    print(f'{module}: {summary}')
    assert result.returncode == 0, (
        f'{module}: {summary}\n{_tail(result.stdout)}\n{_tail(result.stderr, 40)}')
    assert re.search(r'\d+ passed', summary), f'{module} ran no test: {summary}'


def _summary(out: str) -> str:
    lines = [line for line in (out or '').strip().splitlines() if line.strip()]
    return lines[-1].strip('= ') if lines else 'no output'


def _tail(text, lines: int = 200) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors='replace')
    return '\n'.join((text or '').splitlines()[-lines:])
