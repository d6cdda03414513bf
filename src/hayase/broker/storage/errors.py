"""Storage errors. Each carries the Kafka protocol error code the server answers with."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every storage error; ``error_code`` is the Kafka error code (UNKNOWN_SERVER_ERROR)."""

    error_code: int = -1


class OffsetOutOfRangeError(StorageError):
    error_code = 1


class CorruptRecordError(StorageError):
    """Bad CRC, bad length or bad magic in a record batch (CORRUPT_MESSAGE)."""

    error_code = 2


class UnknownTopicOrPartitionError(StorageError):
    error_code = 3


class RecordTooLargeError(StorageError):
    """A batch is larger than max.message.bytes (MESSAGE_TOO_LARGE)."""

    error_code = 10


class InvalidTopicError(StorageError):
    error_code = 17


class InvalidTimestampError(StorageError):
    """A CreateTime timestamp outside message.timestamp.before/after.max.ms (INVALID_TIMESTAMP)."""

    error_code = 32


class TopicAlreadyExistsError(StorageError):
    error_code = 36


class InvalidPartitionsError(StorageError):
    error_code = 37


class InvalidConfigError(StorageError):
    error_code = 40


class OutOfOrderSequenceError(StorageError):
    error_code = 45


class InvalidProducerEpochError(StorageError):
    error_code = 47


class InvalidRecordError(StorageError):
    """A well-formed batch whose contents break Kafka's rules, e.g. count != lastOffsetDelta + 1."""

    error_code = 87


class KafkaStorageError(StorageError):
    """A disk I/O error while writing or reading a log (KAFKA_STORAGE_ERROR)."""

    error_code = 56
