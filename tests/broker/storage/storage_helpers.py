"""Helpers shared by the storage tests (imported as a plain module: pytest puts this folder on
sys.path)."""

from __future__ import annotations

from pathlib import Path

from hayase.broker.storage import (
    PartitionLog,
    Record,
    TopicConfig,
    build_batch,
    decode_records,
    iter_batches,
)

NOW = 1_700_000_000_000


def batch(
    values: list[bytes] | int = 1,
    *,
    ts: int = NOW,
    pid: int = -1,
    epoch: int = -1,
    seq: int = -1,
    size: int = 10,
) -> bytes:
    """A batch of records; ``values`` is a list of values or a record count."""
    if isinstance(values, int):
        values = [bytes([65 + i % 26]) * size for i in range(values)]
    records = [Record(b"k%d" % i, v) for i, v in enumerate(values)]
    return build_batch(records, base_timestamp=ts, producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def topic_config(**configs: object) -> TopicConfig:
    return TopicConfig.from_kafka({k.replace("_", "."): str(v) for k, v in configs.items()}, {})


def open_log(directory: Path, config: TopicConfig | None = None, **kwargs: object) -> PartitionLog:
    return PartitionLog(directory, "t", 0, config or topic_config(), now_ms=NOW, **kwargs)  # type: ignore[arg-type]


def read_all(log: PartitionLog, start: int | None = None, max_bytes: int = 1 << 20) -> list[tuple[int, bytes | None]]:
    """Every (offset, value) from ``start`` (log start) to the high watermark."""
    offset = log.log_start_offset if start is None else start
    out: list[tuple[int, bytes | None]] = []
    while offset < log.high_watermark:
        data = log.read(offset, max_bytes).records
        assert data, f"empty read at {offset} below the high watermark {log.high_watermark}"
        for pos, header in iter_batches(data):
            for record in decode_records(data, pos):
                if record.offset >= offset:
                    out.append((record.offset, record.value))
            offset = header.last_offset + 1
    return out
