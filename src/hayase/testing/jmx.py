"""Read Apache Kafka's JMX metrics (e.g. RequestHandlerAvgIdlePercent) from Python.

Kafka exposes its broker metrics over JMX only; a tiny Java program (run as a single source file
by Java 17, no build step) connects to the node's JMX port and prints the attributes asked for.
The runner in `hayase.testing.apache_kafka` opens that port on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

_SOURCE = """
import javax.management.*;
import javax.management.remote.*;
public class JmxRead {
  public static void main(String[] a) throws Exception {
    JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://127.0.0.1:" + a[0] + "/jmxrmi");
    try (JMXConnector c = JMXConnectorFactory.connect(url)) {
      MBeanServerConnection s = c.getMBeanServerConnection();
      for (int i = 1; i + 1 < a.length; i += 2) {
        Object v;
        try { v = s.getAttribute(new ObjectName(a[i]), a[i + 1]); }
        catch (Exception e) { v = "ERROR " + e.getClass().getSimpleName(); }
        System.out.println(a[i] + "\\t" + a[i + 1] + "\\t" + v);
      }
    }
  }
}
"""

REQUEST_HANDLER_IDLE = ("kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent",
                        "OneMinuteRate")


def read(port: int, attributes: list[tuple[str, str]], timeout: float = 30.0) -> dict[tuple[str, str], float | str]:
    """Read (object name, attribute) pairs from the JMX server on 127.0.0.1:port."""
    if shutil.which("java") is None:
        raise RuntimeError("java not found")
    with tempfile.TemporaryDirectory(prefix="hayase-jmx-") as d:
        src = Path(d) / "JmxRead.java"
        src.write_text(_SOURCE)
        args = [a for pair in attributes for a in pair]
        out = subprocess.run(["java", str(src), str(port), *args], capture_output=True, text=True,
                             timeout=timeout, check=True).stdout
    result: dict[tuple[str, str], float | str] = {}
    for line in out.splitlines():
        name, attr, value = line.split("\t", 2)
        try:
            result[(name, attr)] = float(value)
        except ValueError:
            result[(name, attr)] = value
    return result


def request_handler_idle(port: int) -> float:
    """Kafka's RequestHandlerAvgIdlePercent (one-minute rate, 0..1)."""
    value = read(port, [REQUEST_HANDLER_IDLE])[REQUEST_HANDLER_IDLE]
    if isinstance(value, str):
        raise RuntimeError(f"cannot read {REQUEST_HANDLER_IDLE}: {value}")
    return value
