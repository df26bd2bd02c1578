"""The circuit breaker: opens after N consecutive failures, refuses while open, lets one trial
through after an exponentially growing, capped, jittered backoff, closes on success."""

from __future__ import annotations

import pytest

from stonks_plugins.sandbox import CLOSED, HALF_OPEN, OPEN, CircuitBreaker

from .conftest import FakeClock


def breaker(clock: FakeClock, **kw: float) -> CircuitBreaker:
    kw.setdefault("jitter", 0.0)
    return CircuitBreaker(clock=clock, rng=lambda: 0.5, **kw)  # type: ignore[arg-type]


def trip(cb: CircuitBreaker) -> None:
    while cb.state != OPEN:
        cb.record_failure()


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=3)
    assert cb.state == CLOSED and cb.clean and cb.allow()
    assert cb.record_failure() is False
    assert cb.record_failure() is False
    assert cb.state == CLOSED and not cb.clean and cb.allow()
    assert cb.record_failure() is True
    assert cb.state == OPEN and cb.failures == 3
    assert cb.allow() is False


def test_a_success_resets_the_count(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=3)
    cb.record_failure()
    cb.record_failure()
    assert cb.record_success() is False  # not an outage: the circuit never opened
    assert cb.failures == 0 and cb.clean
    cb.record_failure()
    cb.record_failure()
    assert cb.state == CLOSED


def test_refuses_until_backoff_then_half_opens_for_one_trial(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=1, base_delay=10.0)
    cb.record_failure()
    assert cb.retry_in() == pytest.approx(10.0)
    clock.advance(9.9)
    assert cb.allow() is False
    assert cb.retry_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert cb.allow() is True
    assert cb.state == HALF_OPEN
    assert cb.allow() is False  # one trial at a time
    assert cb.retry_in() == 0.0


def test_successful_trial_closes_and_forgets(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=2, base_delay=1.0)
    trip(cb)
    clock.advance(1.0)
    assert cb.allow()
    assert cb.record_success() is True  # an outage ended
    assert cb.state == CLOSED and cb.failures == 0 and cb.opens == 0 and cb.clean
    trip(cb)  # the next outage starts from the base delay again
    assert cb.delay == pytest.approx(1.0)


def test_failed_trial_reopens_with_doubled_delay_capped(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=1, base_delay=1.0, max_delay=8.0)
    delays = []
    cb.record_failure()
    delays.append(cb.delay)
    for _ in range(5):
        clock.advance(cb.delay)
        assert cb.allow()
        assert cb.record_failure() is True
        assert cb.state == OPEN
        delays.append(cb.delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert cb.opens == 6


def test_huge_number_of_openings_does_not_overflow(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=1, base_delay=1.0, max_delay=300.0)
    cb.opens = 5000
    cb.record_failure()
    assert cb.delay == 300.0


@pytest.mark.parametrize(("rnd", "factor"), [(0.0, 0.9), (0.5, 1.0), (0.999999, 1.1)])
def test_jitter_stays_within_its_fraction(clock: FakeClock, rnd: float, factor: float) -> None:
    cb = CircuitBreaker(
        threshold=1, base_delay=10.0, max_delay=300.0, jitter=0.1, clock=clock, rng=lambda: rnd
    )
    cb.record_failure()
    assert cb.delay == pytest.approx(10.0 * factor, rel=1e-4)
    assert cb.opened_until == pytest.approx(clock.now + cb.delay)


def test_jitter_never_exceeds_the_cap(clock: FakeClock) -> None:
    cb = CircuitBreaker(
        threshold=1, base_delay=8.0, max_delay=8.0, jitter=0.5, clock=clock, rng=lambda: 0.99
    )
    cb.record_failure()
    assert cb.delay <= 8.0


def test_jitter_with_the_real_rng_stays_in_bounds(clock: FakeClock) -> None:
    for _ in range(200):
        cb = CircuitBreaker(threshold=1, base_delay=4.0, jitter=0.25, clock=clock)
        cb.record_failure()
        assert 3.0 <= cb.delay <= 5.0


def test_unreported_trial_does_not_wedge_the_circuit(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=1, base_delay=5.0)
    cb.record_failure()
    clock.advance(5.0)
    assert cb.allow()  # the trial's caller never reports back
    clock.advance(4.0)
    assert not cb.allow()
    clock.advance(1.0)
    assert cb.allow()  # a new trial after the current delay


def test_failure_reported_while_open_changes_nothing(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=1, base_delay=5.0)
    cb.record_failure()
    until = cb.opened_until
    assert cb.record_failure() is False
    assert cb.opened_until == until and cb.opens == 1


def test_reset_and_snapshot(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=1, base_delay=5.0)
    cb.record_failure()
    snap = cb.snapshot()
    assert snap["state"] == "open" and snap["retry_in"] == 5.0 and snap["opens"] == 1
    assert cb.next_delay() == 10.0
    cb.reset()
    assert cb.state == CLOSED and cb.clean and cb.allow()
    assert "closed" in repr(cb)


@pytest.mark.parametrize(
    "kw",
    [{"threshold": 0}, {"base_delay": 0}, {"base_delay": 5, "max_delay": 1}, {"jitter": 1.0}],
)
def test_bad_settings_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**kw)  # type: ignore[arg-type]


def test_trip_opens_at_once_whatever_the_count(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=5, base_delay=10.0)
    cb.trip()  # a call so bad it must not be tried again at once
    assert cb.state == OPEN and cb.failures == 1 and not cb.clean
    assert cb.allow() is False and cb.retry_in() == 10.0
    clock.advance(10.0)
    assert cb.allow() is True and cb.state == HALF_OPEN  # the trial
    cb.trip()  # the trial misbehaved too: open again, twice as long
    assert cb.state == OPEN and cb.failures == 2 and cb.retry_in() == 20.0


def test_a_recovery_forgets_the_whole_outage(clock: FakeClock) -> None:
    cb = breaker(clock, threshold=1, base_delay=10.0)
    cb.record_failure()
    clock.advance(10.0)
    assert cb.allow() is True
    assert cb.record_success() is True
    assert (cb.state, cb.failures, cb.opens, cb.delay, cb.opened_until, cb.clean) == (
        CLOSED,
        0,
        0,
        0.0,
        0.0,
        True,
    )
    assert cb.snapshot() == {
        "state": "closed",
        "failures": 0,
        "threshold": 1,
        "opens": 0,
        "delay": 0.0,
        "retry_in": 0.0,
    }
    cb.record_failure()  # the next outage starts again from the first delay
    assert cb.retry_in() == 10.0


def test_snapshot_shows_the_jittered_delay_to_the_millisecond(clock: FakeClock) -> None:
    # rng 0.123456 with jitter 0.5: the first delay is 1 s * (1 - 0.376544) = 0.623456 s.
    cb = CircuitBreaker(threshold=1, base_delay=1.0, jitter=0.5, clock=clock, rng=lambda: 0.123456)
    cb.record_failure()
    assert cb.delay == pytest.approx(0.623456)
    assert cb.snapshot() == {
        "state": "open",
        "failures": 1,
        "threshold": 1,
        "opens": 1,
        "delay": 0.623,
        "retry_in": 0.623,
    }


def test_a_success_of_a_healthy_plugin_is_no_recovery(clock: FakeClock) -> None:
    cb = breaker(clock)
    assert cb.record_success() is False  # nothing was wrong: nothing to report
