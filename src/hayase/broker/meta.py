"""Broker identity and id allocation kept in the data folder.

* `meta.properties` (the file Kafka keeps in each log dir): `cluster.id`, `node.id`, `version`.
  The cluster id is created once and never changes for that data folder.
* `producer-ids`: the next producer id block. Ids are handed out from a block of 1000 whose end
  is fsynced *before* any id of it is used, so ids never repeat after a restart or a crash (at
  most a block is skipped).
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

from hayase.broker.config import parse_properties

PRODUCER_ID_BLOCK = 1000


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def new_cluster_id() -> str:
    """Kafka's format: a random UUID, URL-safe base64 without padding (22 characters), never
    starting with '-' (Kafka's Uuid.randomUuid rule, so it cannot look like a CLI flag)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def load_or_create_cluster_id(data_dir: Path, node_id: int) -> str:
    path = data_dir / "meta.properties"
    if path.exists():
        props = parse_properties(path.read_text())
        if props.get("cluster.id"):
            return props["cluster.id"]
    cluster_id = new_cluster_id()
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, f"#hayase broker\nversion=1\ncluster.id={cluster_id}\n"
                            f"node.id={node_id}\n")
    return cluster_id


class ProducerIdAllocator:
    """Hands out producer ids that never repeat across restarts of the same data folder."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "producer-ids"
        self._next = 0
        self._block_end = 0
        if self._path.exists():
            text = self._path.read_text().strip()
            self._next = self._block_end = int(text) if text else 0

    def allocate(self) -> int:
        if self._next >= self._block_end:
            self._block_end = self._next + PRODUCER_ID_BLOCK
            _write_atomically(self._path, f"{self._block_end}\n")
        pid = self._next
        self._next += 1
        return pid
