"""No timeout outside a test shorter than the limits inside it (issue 13, item 9).

tests/functional/test_nova.py runs each Nova module in a pytest process of
its own, limited to TIMEOUT_S, on WORKERS workers; a module's test waits for
its run, which may start only after other runs. pytest's own timeout on that
test (setup.cfg's default unless the test sets one) must cover all of it, or
a loaded machine fails on the outer limit while the inner one still runs.
"""

import configparser
import math
import os
import pathlib

from tests.functional import test_nova

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _timeout(function) -> float:
    marks = [m for m in getattr(function, 'pytestmark', []) if m.name == 'timeout']
    if marks:
        return float(marks[0].args[0])
    config = configparser.ConfigParser()
    config.read(ROOT / 'setup.cfg')
    return float(config['tool:pytest']['timeout'])


def test_the_nova_modules_outer_timeout_covers_their_inner_limits():
    workers = max(1, min(len(test_nova.MODULES), os.cpu_count() or 1))  # as the fixture's
    rounds = math.ceil(len(test_nova.MODULES) / workers)
    assert test_nova.TEST_TIMEOUT_S < test_nova.TIMEOUT_S
    assert _timeout(test_nova.test_nova_module) > rounds * test_nova.TIMEOUT_S
