"""Properties of the pre-copy model over wide input ranges (hypothesis)."""

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from slm_plugin.model.precopy import (
    VM,
    CompletionPolicy,
    advance,
    bandwidth_for_deadline,
    predict,
    start,
)

REL = 1e-9

memory = st.floats(64, 65536)
dirty = st.floats(0, 2000)
bandwidth = st.floats(1, 5000)
downtime = st.floats(0.001, 2)
ratio = st.floats(0.1, 1)
any_stall = st.sampled_from(('pause', 'postcopy', 'none'))


@st.composite
def vms(draw, block=True, compressed=True):
    m = draw(memory)
    wws = draw(st.none() | st.floats(1, m))
    disk = draw(st.just(0.0) | st.floats(1, 100_000)) if block else 0.0
    return VM(
        memory_mib=m,
        dirty_rate_mibps=draw(dirty),
        wws_mib=wws,
        disk_mib=disk,
        disk_write_mibps=draw(st.floats(0, 200)) if disk else 0.0,
        wire_ratio=draw(ratio) if compressed else 1.0,
    )


@st.composite
def policies(draw, on_stall=any_stall, auto_converge=None):
    return CompletionPolicy(
        max_downtime_s=draw(downtime),
        max_rounds=draw(st.integers(1, 30)),
        on_stall=draw(on_stall),
        auto_converge=draw(st.booleans() if auto_converge is None else auto_converge),
        switchover_s=draw(st.just(0.0) | st.floats(0, 1)),
    )


def _le(a, b):
    """a <= b up to float rounding (both may be inf)."""
    return a <= b or math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(vms(), policies(), bandwidth)
def test_wire_and_time_lower_bounds(vm, policy, rate):
    p = predict(vm, policy, rate)
    payload = vm.memory_mib + vm.disk_mib
    if math.isinf(p.switchover_s):
        assert not p.converged
        assert p.completion == 'never'
        return
    # every byte of memory (and disk) crosses the wire at least once, compressed
    assert _le(payload * vm.wire_ratio, p.wire_mib)
    # and it cannot cross faster than the wire rate
    assert _le(payload * vm.wire_ratio / rate, p.switchover_s)
    assert _le(p.wire_mib / rate, p.finish_s)
    assert _le(p.switchover_s, p.finish_s)
    assert p.downtime_s >= 0
    assert p.rounds[0] == vm.memory_mib
    if p.converged:
        assert _le(p.downtime_s, policy.max_downtime_s + policy.switchover_s)


@settings(max_examples=200, deadline=None)
@given(vms(block=False, compressed=False), policies(), bandwidth)
def test_wire_at_least_memory_uncompressed(vm, policy, rate):
    p = predict(vm, policy, rate)
    assert _le(vm.memory_mib, p.wire_mib)
    assert _le(vm.memory_mib / rate, p.switchover_s)


@settings(max_examples=200, deadline=None)
@given(vms(), policies(on_stall=st.just('pause'), auto_converge=st.just(False)),
       bandwidth, bandwidth)
def test_switchover_non_increasing_in_bandwidth(vm, policy, b1, b2):
    b1, b2 = sorted((b1, b2))
    assume(b1 < b2)
    slow = predict(vm, policy, b1)
    fast = predict(vm, policy, b2)
    assert _le(fast.switchover_s, slow.switchover_s)
    assert _le(fast.finish_s, slow.finish_s)


@settings(max_examples=200, deadline=None)
@given(vms(), policies(on_stall=st.just('pause'), auto_converge=st.just(False)),
       bandwidth, dirty)
def test_switchover_non_decreasing_in_dirty_rate(vm, policy, rate, d2):
    d1, d2 = sorted((vm.dirty_rate_mibps, d2))
    assume(d1 < d2)
    calm = predict(VM(**{**_fields(vm), 'dirty_rate_mibps': d1}), policy, rate)
    busy = predict(VM(**{**_fields(vm), 'dirty_rate_mibps': d2}), policy, rate)
    assert _le(calm.switchover_s, busy.switchover_s)
    assert _le(calm.wire_mib, busy.wire_mib)


def _fields(vm):
    return {name: getattr(vm, name) for name in VM.__slots__}


@settings(max_examples=100, deadline=None)
@given(vms(), policies(), bandwidth, st.floats(0, 1000))
def test_deterministic(vm, policy, rate, t):
    assert predict(vm, policy, rate) == predict(vm, policy, rate)
    s1 = advance(vm, policy, start(vm), rate, t)
    s2 = advance(vm, policy, start(vm), rate, t)
    assert s1 == s2
    assert predict(vm, policy, rate, s1) == predict(vm, policy, rate, s2)


@settings(max_examples=150, deadline=None)
@given(
    vms(),
    policies(),
    st.lists(st.tuples(st.floats(0, 5000), st.floats(0.001, 200)), min_size=1, max_size=40),
)
def test_advance_conservation(vm, policy, steps):
    s = start(vm)
    for rate, dt in steps:
        if s.finished:
            break
        t = advance(vm, policy, s, rate, dt)
        if not t.finished:
            assert math.isclose(t.elapsed, s.elapsed + dt, rel_tol=REL, abs_tol=1e-9), (s, t)
        else:
            assert _le(t.elapsed, s.elapsed + dt + policy.switchover_s)
        assert _le(t.wire_mib - s.wire_mib, rate * dt)
        assert t.wire_mib >= s.wire_mib
        s = t


@settings(max_examples=200, deadline=None)
@given(vms(), policies(), bandwidth, st.floats(0, 1, exclude_max=True), st.floats(0.001, 50))
def test_state_at_t_has_elapsed_t(vm, policy, rate, frac, dt):
    """Stopping anywhere before the end: elapsed is the time advanced, and one more step adds dt.

    Besides a point anywhere in the migration, look closely at the switchover cost and at a
    post-copy tail, where a fixed cost could put the state's clock ahead of its caller's.
    """
    p = predict(vm, policy, rate)
    assume(math.isfinite(p.finish_s))
    for t in (
        frac * p.finish_s,
        p.switchover_s - frac * policy.switchover_s,
        p.switchover_s + frac * (p.finish_s - p.switchover_s),
    ):
        s = advance(vm, policy, start(vm), rate, t)
        if s.finished:
            continue
        assert math.isclose(s.elapsed, t, rel_tol=REL, abs_tol=1e-9), s
        assert _le(s.wire_mib, rate * t)
        nxt = advance(vm, policy, s, rate, dt)
        if not nxt.finished:
            # compared as instants: a guest whose disk phase nets 1e-16 MiB/s has an elapsed
            # too large for float to resolve dt, and that is float, not the model
            assert math.isclose(nxt.elapsed, s.elapsed + dt, rel_tol=REL, abs_tol=1e-9), nxt


@settings(max_examples=150, deadline=None)
@given(vms(), policies(), bandwidth, st.lists(st.floats(0.001, 100), min_size=1, max_size=30))
def test_steps_compose(vm, policy, rate, steps):
    """Advancing by dt1, dt2, ... is advancing once by their sum."""
    once = advance(vm, policy, start(vm), rate, sum(steps))
    s = start(vm)
    for dt in steps:
        s = advance(vm, policy, s, rate, dt)
    assert (s.phase, s.round, s.completion, s.throttle) == (
        once.phase, once.round, once.completion, once.throttle)
    for name in ('elapsed', 'wire_mib', 'to_send', 'dirty'):
        assert math.isclose(getattr(s, name), getattr(once, name), rel_tol=REL, abs_tol=1e-6), name


@settings(max_examples=150, deadline=None)
@given(vms(), policies(), bandwidth, st.floats(0, 1, exclude_max=True))
def test_predict_from_mid_migration(vm, policy, rate, frac):
    """Predicting from where a migration got to agrees with predicting it from the start."""
    whole = predict(vm, policy, rate)
    assume(math.isfinite(whole.finish_s))
    s = advance(vm, policy, start(vm), rate, frac * whole.finish_s)
    assume(not s.finished)
    rest = predict(vm, policy, rate, s)
    assert rest.completion == whole.completion
    assert math.isclose(s.elapsed + rest.finish_s, whole.finish_s, rel_tol=REL, abs_tol=1e-9)
    assert math.isclose(s.wire_mib + rest.wire_mib, whole.wire_mib, rel_tol=REL, abs_tol=1e-9)
    if not s.switched_over:
        assert math.isclose(s.elapsed + rest.switchover_s, whole.switchover_s, rel_tol=REL,
                            abs_tol=1e-9)
        assert math.isclose(rest.downtime_s, whole.downtime_s, rel_tol=REL, abs_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(vms(), policies(on_stall=st.sampled_from(('pause', 'none')), auto_converge=st.just(False)),
       st.floats(1, 3600), st.floats(0, 0.9))
def test_bandwidth_for_deadline_is_the_least_rate(vm, policy, deadline, frac):
    """Where switchover time falls with bandwidth (no post-copy, no auto-converge)."""
    b = bandwidth_for_deadline(vm, policy, deadline)
    if math.isinf(b):  # only when even 1e12 MiB/s is too slow (the switchover cost alone)
        assert predict(vm, policy, 1e12).switchover_s > deadline
        return
    assert predict(vm, policy, b).switchover_s <= deadline
    assert predict(vm, policy, 0.99 * b).switchover_s > deadline
    # and from wherever the migration got to at that rate
    s = advance(vm, policy, start(vm), b, frac * deadline)
    assume(not s.switched_over)
    left = deadline * (1 - frac)
    b2 = bandwidth_for_deadline(vm, policy, left, s)
    assert math.isfinite(b2)
    assert predict(vm, policy, b2, s).switchover_s <= left
    assert predict(vm, policy, 0.99 * b2, s).switchover_s > left
    assert b2 <= b * (1 + 1e-3)  # on schedule at b, b still suffices
