"""hayase.broker.storage: segment files, indexes, partition logs, recovery and retention.

The contract with the broker server is /work/team/STORAGE_API.md (kept in docs by the lead).
"""

from hayase.broker.storage.batch import (
    BatchHeader,
    Record,
    build_batch,
    decode_records,
    iter_batches,
)
from hayase.broker.storage.cleaner import prepare_cleaning
from hayase.broker.storage.config import TopicConfig
from hayase.broker.storage.errors import (
    CorruptRecordError,
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    RecordTooLargeError,
    StorageError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from hayase.broker.storage.log import AppendResult, PartitionLog, ReadResult
from hayase.broker.storage.manager import LogManager

__all__ = [
    "AppendResult",
    "BatchHeader",
    "CorruptRecordError",
    "InvalidConfigError",
    "InvalidPartitionsError",
    "InvalidProducerEpochError",
    "InvalidRecordError",
    "InvalidTimestampError",
    "InvalidTopicError",
    "KafkaStorageError",
    "LogManager",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "PartitionLog",
    "ReadResult",
    "Record",
    "RecordTooLargeError",
    "StorageError",
    "TopicAlreadyExistsError",
    "TopicConfig",
    "UnknownTopicOrPartitionError",
    "build_batch",
    "decode_records",
    "iter_batches",
    "prepare_cleaning",
]
