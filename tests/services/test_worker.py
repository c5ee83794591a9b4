"""The abandonable one-thread executor behind the online-store lookups."""

from __future__ import annotations

import threading
import time

import pytest

from app.services.worker import Abandoned, Worker


def test_calls_run_in_order_and_report_their_age() -> None:
    worker = Worker("test")
    gate = threading.Event()
    first = worker.submit(gate.wait, 5)
    second = worker.submit(lambda: "second")
    time.sleep(0.05)
    assert worker.pending == 2 and worker.busy_since is not None
    assert worker.oldest_seconds() >= 0.05 and worker.running_seconds() >= 0.04
    gate.set()
    assert first.result(1) is True and second.result(1) == "second"
    assert worker.pending == 0 and worker.oldest_seconds() == 0.0
    worker.shutdown()


def test_exceptions_reach_the_caller() -> None:
    worker = Worker("test")
    with pytest.raises(ZeroDivisionError):
        worker.submit(lambda: 1 / 0).result(1)
    worker.shutdown()


def test_an_abandoned_worker_fails_its_queue_and_lets_its_call_finish() -> None:
    worker = Worker("test")
    gate = threading.Event()
    running = worker.submit(gate.wait, 5)
    queued = [worker.submit(lambda: "never") for _ in range(3)]
    time.sleep(0.02)
    worker.abandon()
    for future in queued:
        with pytest.raises(Abandoned):
            future.result(0.1)
    assert worker.pending == 1  # the running call is still counted
    with pytest.raises(RuntimeError):
        worker.submit(lambda: None)
    gate.set()
    assert running.result(1) is True
    time.sleep(0.05)
    assert not worker.alive  # its thread ends once the call returns


def test_a_worker_thread_never_holds_up_interpreter_exit() -> None:
    worker = Worker("test")
    worker.submit(time.sleep, 60)
    assert worker._thread.daemon
    worker.abandon()
