"""Property: whatever the appends, rolls and reopens (clean or crashed), reads return exactly
what was appended, at the offsets it was given."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import NOW, open_log, read_all, topic_config

from hayase.broker.storage import Record, build_batch, decode_records, iter_batches

values = st.lists(st.binary(max_size=40), min_size=1, max_size=6)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(values, min_size=1, max_size=3)),
        st.tuples(st.just("roll"), st.none()),
        st.tuples(st.just("flush"), st.none()),
        st.tuples(st.just("idempotent"), st.tuples(st.sampled_from([7, 8]), values)),
        st.tuples(st.just("retry"), st.tuples(st.sampled_from([7, 8]), st.integers(1, 5))),
        st.tuples(st.just("reopen"), st.booleans()),
        st.tuples(st.just("read"), st.tuples(st.integers(0, 200), st.integers(1, 600))),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, segment_bytes=st.integers(200, 3000), interval=st.integers(0, 300))
def test_reads_return_what_was_appended(ops, segment_bytes: int, interval: int) -> None:
    config = topic_config(segment_bytes=segment_bytes, index_interval_bytes=interval)
    with tempfile.TemporaryDirectory() as d:
        directory = Path(d)
        log = open_log(directory, config, flush_on_roll=False)
        model: list[bytes] = []
        sent: dict[int, list[tuple[bytes, int, int]]] = {7: [], 8: []}  # pid -> (batch, base, last)
        next_seq = {7: 0, 8: 0}
        try:
            for op, arg in ops:
                if op == "append":
                    data = b"".join(build_batch([Record(None, v) for v in vs], base_timestamp=NOW) for vs in arg)
                    r = log.append(data, NOW)
                    flat = [v for vs in arg for v in vs]
                    assert (r.base_offset, r.last_offset) == (len(model), len(model) + len(flat) - 1)
                    model += flat
                elif op == "idempotent":
                    pid, vs = arg
                    data = build_batch([Record(None, v) for v in vs], base_timestamp=NOW,
                                       producer_id=pid, producer_epoch=0, base_sequence=next_seq[pid])
                    r = log.append(data, NOW)
                    assert not r.duplicate and r.base_offset == len(model)
                    next_seq[pid] += len(vs)
                    model += vs
                    sent[pid].append((data, r.base_offset, r.last_offset))
                elif op == "retry":
                    pid, back = arg
                    if len(sent[pid]) < back:
                        continue
                    data, base, last = sent[pid][-back]
                    r = log.append(data, NOW)  # one of the last 5: recognised, nothing written
                    assert r.duplicate and (r.base_offset, r.last_offset) == (base, last)
                elif op == "roll":
                    log.roll(NOW)
                elif op == "flush":
                    log.flush()
                    assert log.recovery_point == len(model)
                elif op == "reopen":
                    recovery_point = log.recovery_point
                    log.close(flush=arg)
                    log = open_log(directory, config, clean_shutdown=arg, flush_on_roll=False,
                                   recovery_point=recovery_point)
                else:
                    offset, max_bytes = arg
                    if offset >= len(model):
                        continue
                    data = log.read(offset, max_bytes).records
                    batches = list(iter_batches(data))
                    assert batches and batches[0][1].base_offset <= offset <= batches[0][1].last_offset
                    assert len(batches) == 1 or len(data) <= max_bytes
                    for pos, _ in batches:
                        for rec in decode_records(data, pos):
                            assert rec.value == model[rec.offset]
                assert log.high_watermark == len(model)
            assert read_all(log) == list(enumerate(model))
        finally:
            log.close()
