"""LogManager: every topic-partition log under one data directory (Kafka's LogManager).

Layout of ``data_dir`` (Kafka's names where Kafka has one):

    .lock                              flock held while a LogManager has the directory open
    .kafka_cleanshutdown               written by close(); its absence at open means recovery
    topics.json                        name -> topic id (UUID), partition count, topic configs
    recovery-point-offset-checkpoint   Kafka's checkpoint format: version, count, "topic p offset"
    log-start-offset-checkpoint        same format
    cleaner-offset-checkpoint          same format: first dirty offset of each compacted log
    <topic>-<partition>/               segments (.log/.index/.timeindex) and .snapshot files

A topic is deleted by removing it from topics.json, closing its logs and renaming each partition
directory to ``<dir>.<id>-delete`` before removing it; leftovers of an interrupted deletion are
removed at the next open.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hayase.broker.storage.cleaner import (
    CLEANER_CHECKPOINT,
    CleanerConfig,
    CleaningTask,
    LogCleaner,
    PreparedCleaning,
)
from hayase.broker.storage.config import TopicConfig
from hayase.broker.storage.errors import (
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidTopicError,
    StorageError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from hayase.broker.storage.log import PartitionLog

logger = logging.getLogger("hayase.broker.storage")

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
LOCK_FILE = ".lock"
TOPICS_FILE = "topics.json"
RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
DELETE_SUFFIX = "-delete"
MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")


def validate_topic_name(name: str) -> None:
    """Kafka's Topic.validate rules."""
    if not name:
        raise InvalidTopicError("topic name is empty")
    if name in (".", ".."):
        raise InvalidTopicError(f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicError(f"topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters")
    if not _LEGAL_TOPIC.match(name):
        raise InvalidTopicError(
            f"topic name {name!r} is illegal: only ASCII alphanumerics, '.', '_' and '-' are allowed")


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint(path: Path) -> dict[tuple[str, int], int]:
    """Kafka's OffsetCheckpointFile; a missing or malformed file reads as empty."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    out: dict[tuple[str, int], int] = {}
    try:
        if lines[0].strip() != "0":
            return {}
        for line in lines[2 : 2 + int(lines[1])]:
            topic, partition, offset = line.split()
            out[(topic, int(partition))] = int(offset)
    except (IndexError, ValueError):
        logger.warning("ignoring malformed checkpoint file %s", path)
        return {}
    return out


def write_checkpoint(path: Path, offsets: dict[tuple[str, int], int]) -> None:
    lines = ["0", str(len(offsets))] + [f"{t} {p} {o}" for (t, p), o in sorted(offsets.items())]
    _write_atomically(path, ("\n".join(lines) + "\n").encode())


class LogManager:
    def __init__(
        self,
        data_dir: Path,
        broker_config: dict[str, str],
        *,
        now_ms: int | None = None,
        flush_on_roll: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.broker_config = {k: str(v) for k, v in broker_config.items()}
        TopicConfig.from_kafka({}, self.broker_config)  # bad broker defaults fail here, early
        try:
            self.num_partitions = int(self.broker_config.get("num.partitions", "1"))
        except ValueError:
            raise InvalidConfigError(
                f"num.partitions must be an integer, not {self.broker_config['num.partitions']!r}") from None
        if self.num_partitions < 1:
            raise InvalidConfigError(f"num.partitions must be at least 1, not {self.num_partitions}")
        self.flush_on_roll = flush_on_roll
        self._cleaner = LogCleaner(CleanerConfig.from_broker(self.broker_config))
        # One worker thread fsyncs rolled segments (Kafka's flush-on-roll, off the caller's thread).
        self._flusher = ThreadPoolExecutor(1, "hayase-log-flusher") if flush_on_roll else None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise StorageError(f"data directory {self.data_dir} is in use by another process") from None
        self._closed = False
        self._topics: dict[str, dict] = {}
        self._configs: dict[str, TopicConfig] = {}
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._checkpointed: tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]] = ({}, {})
        self._cleaner_checkpointed: dict[tuple[str, int], int] = {}
        try:
            self._load(now_ms)
        except BaseException:
            self._close_logs(flush=False)
            self._stop_flusher()
            os.close(self._lock_fd)
            raise

    # --- open ----------------------------------------------------------------------------------

    def _load(self, now_ms: int | None) -> None:
        marker = self.data_dir / CLEAN_SHUTDOWN_FILE
        clean = marker.exists()
        for entry in os.listdir(self.data_dir):
            if entry.endswith(DELETE_SUFFIX):
                shutil.rmtree(self.data_dir / entry, ignore_errors=True)
        try:
            self._topics = json.loads((self.data_dir / TOPICS_FILE).read_text())
        except FileNotFoundError:
            self._topics = {}
        recovery_points = read_checkpoint(self.data_dir / RECOVERY_POINT_CHECKPOINT)
        log_starts = read_checkpoint(self.data_dir / LOG_START_OFFSET_CHECKPOINT)
        self._cleaner.checkpoints = read_checkpoint(self.data_dir / CLEANER_CHECKPOINT)
        self._cleaner_checkpointed = dict(self._cleaner.checkpoints)
        if not clean and self._topics:
            logger.info("no clean shutdown marker in %s: recovering logs", self.data_dir)
        for name, meta in self._topics.items():
            self._configs[name] = TopicConfig.from_kafka(meta["configs"], self.broker_config)
            for p in range(meta["partitions"]):
                self._logs[(name, p)] = self._open_log(
                    name, p, clean, recovery_points.get((name, p), 0), log_starts.get((name, p), 0), now_ms)
        marker.unlink(missing_ok=True)

    def _open_log(
        self, topic: str, partition: int, clean: bool, recovery_point: int, log_start: int, now_ms: int | None
    ) -> PartitionLog:
        return PartitionLog(
            self.data_dir / f"{topic}-{partition}", topic, partition, self._configs[topic],
            recovery_point=recovery_point, log_start_offset=log_start, clean_shutdown=clean,
            now_ms=now_ms, flush_on_roll=self.flush_on_roll, flusher=self._flusher)

    def _save_topics(self) -> None:
        _write_atomically(self.data_dir / TOPICS_FILE, json.dumps(self._topics, indent=1, sort_keys=True).encode())

    # --- topics --------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> None:
        """Create a topic; ``partitions`` -1 means num.partitions."""
        self._check_open()
        validate_topic_name(name)
        if name in self._topics:
            raise TopicAlreadyExistsError(f"topic {name!r} already exists")
        collision = name.replace(".", "_")
        for other in self._topics:
            if other.replace(".", "_") == collision:
                raise InvalidTopicError(f"topic {name!r} collides with existing topic {other!r}")
        if partitions == -1:
            partitions = self.num_partitions
        if partitions < 1:
            raise InvalidPartitionsError(f"number of partitions must be at least 1, not {partitions}")
        config = TopicConfig.from_kafka(dict(configs), self.broker_config)
        self._configs[name] = config
        for p in range(partitions):
            directory = self.data_dir / f"{name}-{p}"
            if directory.exists():  # an orphan of a create that crashed before topics.json
                shutil.rmtree(directory)
            self._logs[(name, p)] = self._open_log(name, p, False, 0, 0, None)
        self._topics[name] = {"topic_id": str(uuid.uuid4()), "partitions": partitions, "configs": config.overrides}
        self._save_topics()

    def delete_topic(self, name: str) -> None:
        """Forget the topic, close its files at once and remove its directories."""
        self._check_open()
        meta = self._topics.pop(name, None)
        if meta is None:
            raise UnknownTopicOrPartitionError(f"unknown topic {name!r}")
        self._save_topics()
        self._configs.pop(name, None)
        self._cleaner.forget(name)
        suffix = f".{uuid.UUID(meta['topic_id']).hex}{DELETE_SUFFIX}"
        for p in range(meta["partitions"]):
            log = self._logs.pop((name, p), None)
            if log is not None:
                log.close(flush=False)
            directory = self.data_dir / f"{name}-{p}"
            doomed = directory.with_name(directory.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                os.rename(directory, doomed)
                shutil.rmtree(doomed)

    def create_partitions(self, name: str, total: int) -> None:
        self._check_open()
        meta = self._topics.get(name)
        if meta is None:
            raise UnknownTopicOrPartitionError(f"unknown topic {name!r}")
        current = meta["partitions"]
        if total <= current:
            raise InvalidPartitionsError(
                f"topic {name!r} has {current} partitions; the new count {total} must be larger")
        for p in range(current, total):
            directory = self.data_dir / f"{name}-{p}"
            if directory.exists():
                shutil.rmtree(directory)
            self._logs[(name, p)] = self._open_log(name, p, False, 0, 0, None)
        meta["partitions"] = total
        self._save_topics()

    def alter_topic_config(self, name: str, configs: dict[str, str]) -> TopicConfig:
        """Replace the topic's own configs (AlterConfigs semantics); returns the new config."""
        self._check_open()
        meta = self._topics.get(name)
        if meta is None:
            raise UnknownTopicOrPartitionError(f"unknown topic {name!r}")
        config = TopicConfig.from_kafka(dict(configs), self.broker_config)
        meta["configs"] = config.overrides
        self._use_config(name, config)
        self._save_topics()
        return config

    def set_broker_config(self, broker_config: dict[str, str]) -> None:
        """New broker defaults (dynamic broker configs): every topic's config is resolved
        again, its own configs kept. All are resolved before any changes, so a bad value
        changes nothing."""
        self._check_open()
        resolved = {k: str(v) for k, v in broker_config.items()}
        configs = {name: TopicConfig.from_kafka(dict(meta.get("configs") or {}), resolved)
                   for name, meta in self._topics.items()}
        self.broker_config = resolved
        for name, config in configs.items():
            self._use_config(name, config)

    def _use_config(self, name: str, config: TopicConfig) -> None:
        """The topic and each of its partition logs go on with ``config``."""
        self._configs[name] = config
        for p in range(self._topics[name]["partitions"]):
            self._logs[(name, p)].config = config

    def topics(self) -> dict[str, int]:
        return {name: meta["partitions"] for name, meta in self._topics.items()}

    def has_topic(self, name: str) -> bool:
        return name in self._topics

    def topic_id(self, name: str) -> uuid.UUID:
        meta = self._topics.get(name)
        if meta is None:
            raise UnknownTopicOrPartitionError(f"unknown topic {name!r}")
        return uuid.UUID(meta["topic_id"])

    def topic_config(self, name: str) -> TopicConfig:
        config = self._configs.get(name)
        if config is None:
            raise UnknownTopicOrPartitionError(f"unknown topic {name!r}")
        return config

    def log(self, topic: str, partition: int) -> PartitionLog:
        log = self._logs.get((topic, partition))
        if log is None:
            raise UnknownTopicOrPartitionError(f"unknown topic-partition {topic}-{partition}")
        return log

    def logs(self) -> list[PartitionLog]:
        return list(self._logs.values())

    # --- maintenance ---------------------------------------------------------------------------

    def run_retention(self, now_ms: int) -> int:
        """Delete segments past retention.ms / retention.bytes in every log; returns the count."""
        self._check_open()
        deleted = sum(log.delete_old_segments(now_ms) for log in list(self._logs.values()))
        self.checkpoint(only_if_changed=True)  # keeps recovery after a crash short, as Kafka's
        return deleted                         # periodic checkpoint does

    def run_cleaner(self, now_ms: int) -> int:
        """One log cleaner pass over every compacted log (cleanup.policy contains ``compact``)
        that is dirty enough; returns how many logs were cleaned. The first dirty offsets go to
        ``cleaner-offset-checkpoint`` when they changed. Runs in the caller's thread."""
        return self.commit_cleaning(LogCleaner.prepare(self.plan_cleaning(now_ms)))

    def plan_cleaning(self, now_ms: int) -> list[CleaningTask]:
        """``run_cleaner`` in three steps, to keep the heavy part off the caller's thread:
        ``tasks = lm.plan_cleaning(now)`` here, ``prepared = prepare_cleaning(tasks)`` in a worker
        thread (it reads inactive segments and writes ``.cleaned`` files only), then
        ``lm.commit_cleaning(prepared)`` here again (the swaps and the checkpoint). Every plan
        must be committed; a log changed meanwhile (retention, DeleteRecords, deletion) is
        simply cleaned at a later pass. Do not close the manager while a preparation runs."""
        self._check_open()
        return self._cleaner.plan(list(self._logs.values()), now_ms)

    def commit_cleaning(self, prepared: list[PreparedCleaning]) -> int:
        """Swap in what ``prepare_cleaning`` wrote; returns how many logs were cleaned."""
        self._check_open()
        cleaned = self._cleaner.commit(prepared)
        live = {tp: offset for tp, offset in self._cleaner.checkpoints.items() if tp in self._logs}
        if live != self._cleaner_checkpointed:
            write_checkpoint(self.data_dir / CLEANER_CHECKPOINT, live)
            self._cleaner_checkpointed = live
        return cleaned

    def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """DeleteRecords for one partition; the new log start offset is checkpointed at once."""
        self._check_open()
        start = self.log(topic, partition).delete_records(offset)
        self.checkpoint(only_if_changed=True)
        return start

    def flush_all(self) -> None:
        self._check_open()
        for log in list(self._logs.values()):
            log.flush()
        self.checkpoint()

    def checkpoint(self, only_if_changed: bool = False) -> None:
        """Write the recovery point and log start offset checkpoint files."""
        logs = list(self._logs.items())
        recovery_points = {k: v.recovery_point for k, v in logs}
        log_starts = {k: v.log_start_offset for k, v in logs}
        if only_if_changed and (recovery_points, log_starts) == self._checkpointed:
            return
        write_checkpoint(self.data_dir / RECOVERY_POINT_CHECKPOINT, recovery_points)
        write_checkpoint(self.data_dir / LOG_START_OFFSET_CHECKPOINT, log_starts)
        self._checkpointed = (recovery_points, log_starts)

    def close(self) -> None:
        """Flush and close every log, write the checkpoints and the clean-shutdown marker."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_flusher()
            self._close_logs(flush=True)
            self.checkpoint()
            _write_atomically(self.data_dir / CLEAN_SHUTDOWN_FILE, b"")
        finally:
            self._logs.clear()
            os.close(self._lock_fd)

    def wait_for_background_flushes(self) -> None:
        """Block until the fsyncs queued by earlier rolls are done (for tests and shutdown)."""
        if self._flusher is not None:
            self._flusher.submit(lambda: None).result()

    def _stop_flusher(self) -> None:
        if self._flusher is not None:
            self._flusher.shutdown(wait=True)

    def _close_logs(self, flush: bool) -> None:
        errors: list[BaseException] = []
        for log in self._logs.values():
            try:
                log.close(flush=flush)
            except OSError as exc:
                errors.append(exc)
        if errors:
            raise StorageError(f"closing logs failed: {errors[0]}") from errors[0]

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the log manager is closed")
