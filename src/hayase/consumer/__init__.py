"""hayase.consumer: the parallel consumer (concurrency inside a partition, per-key order,
commit of the contiguous completed prefix, back-pressure, retries and a dead-letter topic)."""

from hayase.consumer.metrics import ConsumerMetrics
from hayase.consumer.offsets import OffsetRegressionError, PartitionOffsets
from hayase.consumer.record import Record
from hayase.consumer.retry import RetryPolicy
from hayase.consumer.runner import ParallelConsumer
from hayase.consumer.scheduling import PartitionScheduler

__all__ = ["ConsumerMetrics", "OffsetRegressionError", "ParallelConsumer", "PartitionOffsets",
           "PartitionScheduler", "Record", "RetryPolicy"]
