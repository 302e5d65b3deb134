"""kopf's line for every drift tick that found nothing, and for every Model event it handled,
is DEBUG, not INFO."""

from __future__ import annotations

import logging

from mme_operator.handlers import QuietTicks


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


def test_a_tick_that_succeeded_is_debug() -> None:
    tick = record("Timer 'register.<locals>.drift_timer' succeeded.")
    logging.getLogger("kopf.objects").setLevel(logging.INFO)
    assert not QuietTicks().filter(tick)  # dropped at INFO
    assert tick.levelname == "DEBUG"
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG)
    try:
        assert QuietTicks().filter(record("Timer 'x' succeeded."))  # kept when debugging
    finally:
        logging.getLogger("kopf.objects").setLevel(logging.NOTSET)


def test_a_model_event_handled_is_debug() -> None:
    logging.getLogger("kopf.objects").setLevel(logging.INFO)
    try:
        handled = record("Handler 'model_events' succeeded.")
        assert not QuietTicks().filter(handled)
        assert handled.levelname == "DEBUG"
        failed = record("Handler 'model_events' failed with an exception.", logging.ERROR)
        assert QuietTicks().filter(failed) and failed.levelno == logging.ERROR
    finally:
        logging.getLogger("kopf.objects").setLevel(logging.NOTSET)


def test_other_lines_stay_as_they_are() -> None:
    for line in (
        "Handler 'register.<locals>.reconcile_handler' succeeded.",
        "Timer 'register.<locals>.drift_timer' failed temporarily: throttled",
    ):
        kept = record(line)
        assert QuietTicks().filter(kept) and kept.levelno == logging.INFO
