"""Driving a run for a consumer: every record folded in, redraws paced, the last one always shown, stop on request."""

import pytest

from core.training import drive as drive_module
from core.training.drive import Pace, drive


@pytest.fixture
def clock(monkeypatch):
    """A fake clock: `clock.now` is what time.perf_counter() returns."""
    class Clock:
        now = 0.0
    monkeypatch.setattr(drive_module.time, "perf_counter", lambda: Clock.now)
    return Clock


def ticking(records, clock, seconds):
    """The records, one every `seconds` of the fake clock."""
    for record in records:
        yield record
        clock.now += seconds


def test_pace_is_due_at_most_every_interval_and_always_when_last(clock):
    pace = Pace(1.0)
    due = []
    for now, last in [(0.0, False), (0.5, False), (1.05, False), (1.1, False), (1.2, True)]:
        clock.now = now
        due.append(pace.due(last))
    assert due == [True, False, True, False, True]


def test_a_pace_given_a_function_reads_its_interval_afresh_each_time(clock):
    interval = [1.0]
    pace = Pace(lambda: interval[0])
    assert pace.due()
    interval[0] = 3.0  # e.g. more trainings now share the process
    clock.now = 2.0
    assert not pace.due()
    clock.now = 3.0
    assert pace.due()


def test_every_record_is_recorded_and_shown_at_most_every_interval_and_at_the_end(clock):
    recorded, shown = [], []
    stopped = drive(ticking(range(10), clock, 0.3), record=recorded.append, show=shown.append, every=1.0)
    assert not stopped and recorded == list(range(10))
    assert shown == [0, 4, 8, 9]  # at 0, 1.2 and 2.4 s, then the last one


def test_a_last_record_already_shown_is_not_shown_twice(clock):
    shown = []
    drive(ticking(range(3), clock, 2.0), record=lambda _: None, show=shown.append, every=1.0)
    assert shown == [0, 1, 2]


def test_a_stop_request_ends_after_the_record_and_shows_it(clock):
    recorded, shown = [], []
    stopped = drive(ticking(range(10), clock, 0.1), record=recorded.append, show=shown.append,
                    stop_requested=lambda: len(recorded) == 4, every=1.0)
    assert stopped and recorded == [0, 1, 2, 3] and shown == [0, 3]


def test_no_records_show_nothing(clock):
    shown = []
    assert not drive([], record=shown.append, show=shown.append) and shown == []


def test_the_apps_live_charts_redraw_less_often_the_more_trainings_share_the_process(monkeypatch):
    import threading

    from dashboard import state

    monkeypatch.setattr(state, "_TRAINING", set())  # (one is registered per training loop running in the app)
    assert state.redraw_seconds() == drive_module.REDRAW_SECONDS
    monkeypatch.setattr(state, "_TRAINING", {threading.Event() for _ in range(8)})
    assert state.redraw_seconds() == 8 * state.SHARED_REDRAW_SECONDS > 8 * drive_module.REDRAW_SECONDS
