"""`hayase demo`: the ads platform running on one machine, until Ctrl-C.

Start order: the embedded broker (data in --data-dir/broker, Prometheus metrics on a free port)
unless --bootstrap-servers is given; the input topics (campaigns compacted); redis-server when
installed (data in --data-dir/redis, append-only file) for the segment updater; the server (ksqlDB
REST API, console, the ads dashboard at /dashboard) whose command topic keeps the pipeline across
restarts: the pipeline is submitted once, later runs replay it; the campaign master data; the
paced generator; the segment updater (ParallelConsumer -> Redis); the dashboard collector.

Stop order on Ctrl-C / SIGTERM (nothing lost): the generator stops and flushes what it handed to
the producer; the segment updater drains, commits and closes; the server stops its queries (each
finishes and commits its batch); the dashboard; Redis (SIGTERM: it fsyncs its AOF); the broker.
"""

from __future__ import annotations

import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from hayase.ads import generator, pipeline_sql
from hayase.ads.producer import (
    EventSender,
    cluster_replicas,
    create_topics,
    send_all,
    send_paced,
)
from hayase.ads.segments import SEGMENTS_GROUP, RedisProcess, SegmentUpdaterThread
from hayase.server.backend import KafkaBackend
from hayase.testing.apache_kafka import free_port

Echo = Callable[[str], None]
SERVICE_ID = "hayase_ads_"


@dataclass
class DemoOptions:
    client_conf: dict[str, object] | None  # None: the embedded broker
    data_dir: Path = Path(".hayase/demo")
    broker_port: int = 9092
    server_port: int = 8088
    seed: int = 7
    rate: float = 20.0
    impressions: int | None = None
    use_redis: bool = True
    speedup: float = 1.0
    duration: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # As a listening server binds (a port in TIME_WAIT after the last run is free).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _start_broker(data_dir: Path, wanted_port: int, echo: Echo) -> tuple[Any, int]:
    """The embedded broker with Prometheus metrics on a free port. Ports are picked free but
    another process can take one before the broker binds it: then try again with new ones."""
    from hayase.testing.brokers import EmbeddedBroker

    for attempt in range(3):
        port = wanted_port if attempt == 0 and port_free(wanted_port) else free_port()
        metrics_port = free_port()
        broker = EmbeddedBroker(data_dir, port, metrics_port=metrics_port)
        echo(f"starting the embedded broker on 127.0.0.1:{port} (data in {data_dir}, "
             f"log {broker.log_path}) ...")
        try:
            broker.start()
            return broker, metrics_port
        except RuntimeError as e:
            if "address already in use" not in str(e) or attempt == 2:
                raise
            echo("a port was taken meanwhile: trying other ports")
    raise AssertionError("unreachable")


def _query_groups(server: Any) -> dict[str, tuple[str, list[str]]]:
    from hayase.engine.runtime import group_id

    out = {}
    for qid, (worker, _stop) in list(server.backend.workers.items()):
        topics = list(worker.query.source_topics)
        out[qid] = (group_id(SERVICE_ID, qid), topics)
    return out


def run_demo(opts: DemoOptions, echo: Echo) -> int:  # noqa: C901 - one linear start/stop story
    import uvicorn

    from hayase.ads.live import Collector
    from hayase.client.config import client_config
    from hayase.engine.runtime import INTERNAL_REPLICAS
    from hayase.server.app import KsqlApp, ServerConfig
    from hayase.server.dashboard import with_dashboard
    from hayase.server.engine import KsqlServer

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    data_dir = opts.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    cleanups: list[tuple[str, Callable[[], None]]] = []
    status = 0
    sender: EventSender | None = None
    budget_sender: EventSender | None = None
    try:
        metrics_url = None
        if opts.client_conf is None:
            broker, metrics_port = _start_broker(data_dir / "broker", opts.broker_port, echo)
            cleanups.append(("embedded broker", broker.stop))
            conf = client_config(broker.bootstrap_servers)
            metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            broker_note = f"broker metrics: {metrics_url}"
        else:
            conf = dict(opts.client_conf)
            broker_note = ("Apache Kafka: the broker's handler idle ratio and file descriptors "
                           "come from JMX (hayase broker metrics not available)")
            echo(f"using the Kafka cluster at {conf.get('bootstrap.servers')}")
        replicas = cluster_replicas(conf)
        echo(f"topics: replication factor {replicas} (inputs, sinks, command topic, "
             f"processing log, changelogs)")
        create_topics(conf, replicas=replicas)

        redis_proc = None
        if opts.use_redis and shutil.which("redis-server"):
            redis_proc = RedisProcess(data_dir / "redis", free_port()).start()
            cleanups.append(("redis-server", redis_proc.stop))
            echo(f"redis-server on {redis_proc.url} (data in {data_dir / 'redis'})")
        elif opts.use_redis:
            echo("SKIPPED: redis-server is not installed (apt-get install redis-server): the "
                 "segment updater does not run; everything else does.")
        else:
            echo("SKIPPED: --no-redis: the segment updater does not run.")

        # ksql.internal.topic.replicas: the command topic, processing log, changelogs and
        # repartition topics get the cluster's factor (sinks: their source topic's).
        backend = KafkaBackend(conf, SERVICE_ID, data_dir / "state",
                               f"{SERVICE_ID}ksql_processing_log")
        server = KsqlServer(backend, SERVICE_ID, {INTERNAL_REPLICAS: str(replicas)})
        replayed = server.start()
        cleanups.append(("server queries", server.close))
        if server.session.metastore.get("ATTRIBUTED_CLICKS") is None:
            entities = server.execute(pipeline_sql(replicas=replicas), {"auto.offset.reset": "earliest"})
            echo(f"pipeline loaded: {len(entities)} statements from hayase/ads/pipeline.sql")
        else:
            echo(f"pipeline already running (replayed {replayed} commands from "
                 f"{server.command_topic})")

        sender = EventSender(conf)
        # With --speedup, the last hour is replayed fast, then events come in real time
        # (send_paced never sends an event before its time).
        history_ms = generator.HOUR_MS if opts.speedup > 1 else 0
        cfg = generator.GeneratorConfig(
            seed=opts.seed, rate=opts.rate, start_ms=int(time.time() * 1000) - history_ms,
            budget_horizon=int(opts.rate * 240), id_prefix=f"r{uuid.uuid4().hex[:6]}-")
        send_all(sender, generator.campaign_events(cfg))

        segments = None
        if redis_proc is not None:
            segments = SegmentUpdaterThread(conf, generator.APP_EVENTS, redis_proc.url)
            segments.start()
            cleanups.append(("segment updater", segments.stop))

        def groups() -> dict[str, tuple[str, list[str]]]:
            g = _query_groups(server)
            if segments is not None:
                g["segment updater"] = (SEGMENTS_GROUP, [generator.APP_EVENTS])
            return g

        def generator_probe() -> dict[str, Any]:
            st = sender.stats
            return {k.replace("ad-", ""): v for k, v in st.sent.items()} | {"acked": st.acked}

        probes: dict[str, Callable[[], dict[str, Any]]] = {"generator": generator_probe}
        probes["segments"] = segments.probe if segments is not None else (
            lambda: {"skipped": "segment updater not running (no redis-server)"})
        collector = Collector(conf, groups, metrics_url, probes)
        collector.extra["broker_note"] = broker_note
        collector.start()
        cleanups.append(("dashboard collector", collector.stop))

        app = with_dashboard(KsqlApp(server, ServerConfig()), collector.snapshot)
        server_port = opts.server_port if port_free(opts.server_port) else free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=server_port, log_level="warning",
                                timeout_graceful_shutdown=3)
        http = uvicorn.Server(config)
        http_thread = threading.Thread(target=http.run, name="http", daemon=True)
        http_thread.start()

        def stop_http() -> None:
            http.should_exit = True
            http_thread.join(15)

        cleanups.append(("http server", stop_http))
        while not http.started and http_thread.is_alive():
            time.sleep(0.05)
        if not http.started:
            raise RuntimeError(f"the HTTP server could not listen on 127.0.0.1:{server_port}")
        echo(f"dashboard:  http://127.0.0.1:{server_port}/dashboard")
        echo(f"console:    http://127.0.0.1:{server_port}/   (ksqlDB REST API on the same port)")
        echo(f"bootstrap.servers={conf.get('bootstrap.servers')}   Ctrl-C stops everything")

        gen_thread = threading.Thread(
            target=send_paced, name="generator",
            args=(sender, generator.events(cfg, opts.impressions), stop),
            kwargs={"speedup": opts.speedup}, daemon=True)
        gen_thread.start()

        def stop_generator() -> None:
            stop.set()
            gen_thread.join(60)

        cleanups.append(("generator", stop_generator))

        deadline = None if opts.duration is None else time.monotonic() + opts.duration
        last = last_top_up = time.monotonic()
        topped: dict[str, int] = {}
        budget_sender = top_ups = EventSender(conf)
        cleanups.append(("budget updates", lambda: top_ups.flush(30)))
        while not stop.is_set():
            if time.monotonic() - last_top_up >= TOP_UP_EVERY_S:
                last_top_up = time.monotonic()
                for e in budget_top_ups(collector.snapshot()["campaigns"], topped,
                                        int(time.time() * 1000)):
                    top_ups.send(e)
                    assert e.value is not None
                    echo(f"campaign {e.key} ({e.value['name']}) spent its budget: the "
                         f"advertiser raises it to {e.value['budget']:,} yen (a new record "
                         f"in the compacted {generator.CAMPAIGNS} topic)")
            if deadline is not None and time.monotonic() >= deadline:
                break
            if segments is not None and segments.error is not None:
                echo(f"segment updater stopped: {segments.error}")
                status = 1
                break
            if time.monotonic() - last >= 5:
                last = time.monotonic()
                echo(_progress(sender, collector.snapshot()))
            stop.wait(0.5)
        echo("stopping ..." + (" (signal received)" if received else ""))
    except Exception as e:  # startup failures: say what, then stop what was started
        echo(f"hayase demo: {e}")
        status = 1
    finally:
        stop.set()
        for name, fn in reversed(cleanups):
            try:
                fn()
            except Exception as e:
                echo(f"stopping {name}: {e}")
                status = 1
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    if sender is not None:
        st = sender.stats
        echo(f"generator: {sum(st.sent.values())} records sent, {st.acked} acknowledged, "
             f"{st.failed} failed")
        echo(_written(st.sent, budget_sender.stats.sent if budget_sender else {}))
    if status == 0:
        echo("stopped cleanly: generator flushed, consumers committed"
             + (", broker shut down" if opts.client_conf is None else ""))
    return status


TOP_UP_EVERY_S = 30.0


def budget_top_ups(campaigns: list[dict[str, Any]], topped: dict[str, int],
                   now_ms: int) -> list[generator.Event]:
    """Campaigns whose spend reached their budget get a budget 50% above the spend, rounded up
    to 100 yen: a new master-data record, which the pipeline's CAMPAIGNS table picks up.
    ``topped`` remembers what was sent so that a campaign is not raised again before the
    pipeline shows the new budget."""
    out = []
    for c in campaigns:
        budget, spend = c.get("budget"), c.get("spend", 0)
        if budget is None or spend < budget or budget < topped.get(c["id"], 0):
            continue
        new_budget = -(-int(spend * 1.5) // 100) * 100
        topped[c["id"]] = new_budget
        out.append(generator.Event(generator.CAMPAIGNS, c["id"],
                                   {"name": c["name"], "budget": new_budget}, now_ms, now_ms))
    return out


def _written(sent: Mapping[str, int], top_ups: Mapping[str, int]) -> str:
    """Records written to each input topic by this run (generator and budget top-ups): what
    a stopped demo must account for."""
    raised = top_ups.get(generator.CAMPAIGNS, 0)
    parts = [f"{t} {n + (raised if t == generator.CAMPAIGNS else 0)}" for t, n in sent.items()]
    return f"written per topic: {', '.join(parts)} ({raised} budget top-ups)"


def _progress(sender: EventSender, snap: dict[str, Any]) -> str:
    st = sender.stats.sent
    lag = snap.get("lag") or {}
    alerts = len({a["campaign"] for a in snap.get("alerts", [])})
    return (f"sent {st[generator.IMPRESSIONS]} impressions, {st[generator.CLICKS]} clicks, "
            f"{st[generator.APP_EVENTS]} app events | attributed {snap.get('attributed_total', 0)}"
            f" | campaigns over 90%: {alerts} | lag {sum(lag.values())}")


__all__ = ["DemoOptions", "run_demo", "send_all"]
