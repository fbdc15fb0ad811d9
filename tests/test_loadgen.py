"""The load generator's measurements, on events whose timing is known (the harness itself runs
against the real server in `python -m loadtest.loadgen`; its figures are in the README)."""

import argparse
import math

from loadtest.loadgen import CallRun, analyse

ARGS = argparse.Namespace(target=2.0, growth=1.0, max_lag=1.0)


def final(call: str, utterance: int, end: float, word_end: float) -> dict:
    return {
        "type": "transcript", "call_id": call, "channel": "customer", "utterance": utterance,
        "final": True, "start": end - 2, "end": end, "words": [{"end": word_end}],
    }  # fmt: skip


def interim(call: str, utterance: int, start: float) -> dict:
    return {
        "type": "transcript", "call_id": call, "channel": "customer", "utterance": utterance,
        "final": False, "start": start, "end": start + 1,
    }  # fmt: skip


def test_latencies_are_timed_from_when_the_audio_was_sent():
    run = CallRun("a", "native", "sample", t0=100.0, done=True)
    events = [
        (103.0, interim("a", 1, 1.5)),  # 1.5 s after the utterance's start went out
        (103.5, interim("a", 1, 1.5)),  # not the first any more
        (105.2, final("a", 1, 4.0, 3.7)),  # 1.2 s after its end, 1.5 s after the last word
        (105.25, {"type": "sentiment", "call_id": "a", "channel": "customer", "utterance": 1}),
        (105.9, {"type": "frustration", "call_id": "a", "onset": True, "end": 4.0}),
        (106.0, {"type": "alert", "call_id": "a", "rule": "frustrated-customer", "end": 4.0}),
        (107.0, final("zzz", 1, 1.0, 1.0)),  # another run's call: ignored
    ]
    step = analyse("batched", [run], events, {"a": 1}, {"shed": 3.0}, ARGS)
    assert math.isclose(step.final_p50, 1.2)
    assert math.isclose(step.last_word_p50, 1.5)
    assert math.isclose(step.first_interim_p50, 1.5)
    assert math.isclose(step.sentiment_p50, 0.05, abs_tol=1e-9)
    assert math.isclose(step.alert_p50, 2.0) and math.isclose(step.frustration_alert_p50, 2.0)
    assert (step.finals, step.interims, step.dropped, step.interims_shed) == (1, 2, 0, 3.0)
    assert step.keeps_up and step.meets_target


def test_a_dropped_final_a_failed_call_or_a_late_sender_fail_the_step():
    ok = CallRun("a", "native", "sample", t0=100.0, done=True)
    events = [(101.0 + i, final("a", i, float(i), float(i))) for i in range(1, 4)]
    assert analyse("batched", [ok], events, {"a": 3}, {}, ARGS).keeps_up
    # the server stored four finals and published three: one was dropped
    dropped = analyse("batched", [ok], events, {"a": 4}, {}, ARGS)
    assert dropped.dropped == 1 and not dropped.keeps_up
    failed = CallRun("b", "twilio", "sample", error="ConnectionClosedError: 1011")
    step = analyse("batched", [ok, failed], events, {"a": 3}, {}, ARGS)
    assert step.failed_calls == 1 and not step.keeps_up and "1011" in step.notes[0]
    late = CallRun("a", "native", "sample", t0=100.0, done=True, lag=2.5)
    assert not analyse("batched", [late], events, {"a": 3}, {}, ARGS).keeps_up


def test_latency_that_grows_over_a_call_means_the_server_falls_behind():
    run = CallRun("a", "native", "sample", t0=50.0, done=True)
    growing = [(50 + i * 5 + 1 + i * 0.5, final("a", i, i * 5.0, i * 5.0)) for i in range(9)]
    step = analyse("batched", [run], growing, {"a": 9}, {}, ARGS)
    assert step.growth_s > 1.0 and not step.keeps_up and not step.meets_target
