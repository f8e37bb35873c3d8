// The reference engine of the differential test (tests/materializer/test_differential.py): the
// seed's tables and the orders stream joined to both, in Kafka Streams with versioned stores
// (KIP-889, KIP-914), so each order is joined with the tables' versions as of its timestamp.
//
//   java -cp 'libs/*:classes' Reference BOOTSTRAP PREFIX APPLICATION_ID STATE_DIR
//
// Tables: organizations (id, name) and customers (id, name, last_name, email), each column the
// latest non-null value per key (ksqlDB's LATEST_BY_OFFSET, nulls ignored); a tombstone deletes
// the row (mapped to a marker first: an aggregation never sees a null value). Outputs, keyed by
// the order id: PREFIX+ref_inner (INNER joins to both tables) and PREFIX+ref_left (LEFT joins).
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.Stores;

public final class Reference {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String DELETED = "__deleted__";

  /** JSON objects as UTF-8; null stays null (a tombstone). */
  public static final class JsonSerde implements Serde<ObjectNode> {
    @Override
    public Serializer<ObjectNode> serializer() {
      return (topic, value) -> {
        try {
          return value == null ? null : JSON.writeValueAsBytes(value);
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      };
    }

    @Override
    public Deserializer<ObjectNode> deserializer() {
      return (topic, bytes) -> {
        try {
          return bytes == null ? null : (ObjectNode) JSON.readTree(bytes);
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      };
    }
  }

  static KTable<String, ObjectNode> table(
      StreamsBuilder builder, String topic, String store, String... columns) {
    Serde<ObjectNode> json = new JsonSerde();
    return builder.stream(topic, Consumed.with(Serdes.String(), json))
        .mapValues(v -> v == null ? JSON.createObjectNode().put(DELETED, true) : v)
        .groupByKey(Grouped.with(Serdes.String(), json))
        .aggregate(
            () -> null,
            (key, value, row) -> {
              if (value.has(DELETED)) {
                return null;
              }
              ObjectNode out = JSON.createObjectNode();
              for (String c : columns) {
                JsonNode v = value.get(c);
                JsonNode old = row == null ? null : row.get(c);
                out.set(c, v != null && !v.isNull() ? v : (old == null ? JSON.nullNode() : old));
              }
              return out;
            },
            Materialized.<String, ObjectNode>as(
                    Stores.persistentVersionedKeyValueStore(store, Duration.ofHours(1)))
                .withKeySerde(Serdes.String())
                .withValueSerde(json));
  }

  static String text(JsonNode node) {
    return node == null || node.isNull() ? null : node.asText();
  }

  static ObjectNode withCustomer(ObjectNode order, ObjectNode customer) {
    ObjectNode out = order.deepCopy();
    out.set("customer_name", customer == null ? JSON.nullNode() : customer.get("name"));
    out.set("customer_last_name", customer == null ? JSON.nullNode() : customer.get("last_name"));
    out.set("email", customer == null ? JSON.nullNode() : customer.get("email"));
    return out;
  }

  static ObjectNode withOrganization(ObjectNode order, ObjectNode organization) {
    ObjectNode out = order.deepCopy();
    out.set("organization_name", organization == null ? JSON.nullNode() : organization.get("name"));
    return out;
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], prefix = args[1], appId = args[2], stateDir = args[3];
    Serde<ObjectNode> json = new JsonSerde();
    StreamsBuilder builder = new StreamsBuilder();
    KTable<String, ObjectNode> organizations =
        table(builder, prefix + "organizations", "organizations-versions", "id", "name");
    KTable<String, ObjectNode> customers =
        table(builder, prefix + "customers", "customers-versions", "id", "name", "last_name", "email");
    KStream<String, ObjectNode> orders =
        builder.stream(prefix + "orders", Consumed.with(Serdes.String(), json));
    Joined<String, ObjectNode, ObjectNode> joined = Joined.with(Serdes.String(), json, json);

    orders
        .selectKey((k, v) -> text(v.get("customer_id")))
        .join(customers, Reference::withCustomer, joined.withName("inner-customers"))
        .selectKey((k, v) -> text(v.get("organization_id")))
        .join(organizations, Reference::withOrganization, joined.withName("inner-organizations"))
        .selectKey((k, v) -> text(v.get("id")))
        .to(prefix + "ref_inner", Produced.with(Serdes.String(), json));
    orders
        .selectKey((k, v) -> text(v.get("customer_id")))
        .leftJoin(customers, Reference::withCustomer, joined.withName("left-customers"))
        .selectKey((k, v) -> text(v.get("organization_id")))
        .leftJoin(organizations, Reference::withOrganization, joined.withName("left-organizations"))
        .selectKey((k, v) -> text(v.get("id")))
        .to(prefix + "ref_left", Produced.with(Serdes.String(), json));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    props.put(StreamsConfig.MAX_TASK_IDLE_MS_CONFIG, 500L); // ksqlDB's: wait for a lagging table partition
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put("auto.offset.reset", "earliest");
    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(10));
      done.countDown();
    }));
    streams.setUncaughtExceptionHandler(e -> {
      e.printStackTrace();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
          .SHUTDOWN_CLIENT;
    });
    streams.start();
    System.out.println("started " + appId);
    System.out.flush();
    done.await();
  }
}
