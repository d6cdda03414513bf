import java.util.*;
import java.time.Duration;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class JavaSmoke {
  public static void main(String[] a) throws Exception {
    String bs = a[0]; String topic = a[1]; int n = Integer.parseInt(a[2]);
    Properties ap = new Properties(); ap.put("bootstrap.servers", bs);
    try (Admin admin = Admin.create(ap)) {
      admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
      System.out.println("cluster " + admin.describeCluster().clusterId().get() + " nodes " + admin.describeCluster().nodes().get());
      System.out.println("topics " + admin.listTopics().names().get().contains(topic));
    }
    Properties pp = new Properties(); pp.put("bootstrap.servers", bs);
    pp.put("key.serializer", StringSerializer.class.getName()); pp.put("value.serializer", StringSerializer.class.getName());
    pp.put("acks", "all");
    try (KafkaProducer<String,String> p = new KafkaProducer<>(pp)) {
      for (int i = 0; i < n; i++) p.send(new ProducerRecord<>(topic, "k" + i, "v" + i));
      p.flush();
    }
    Properties cp = new Properties(); cp.put("bootstrap.servers", bs);
    cp.put("key.deserializer", StringDeserializer.class.getName()); cp.put("value.deserializer", StringDeserializer.class.getName());
    cp.put("group.id", "java-smoke"); cp.put("auto.offset.reset", "earliest");
    int got = 0;
    try (KafkaConsumer<String,String> c = new KafkaConsumer<>(cp)) {
      c.subscribe(List.of(topic));
      long end = System.currentTimeMillis() + 30000;
      while (got < n && System.currentTimeMillis() < end) got += c.poll(Duration.ofMillis(500)).count();
      c.commitSync();
    }
    System.out.println("consumed " + got + " of " + n);
    System.exit(got == n ? 0 : 1);
  }
}
