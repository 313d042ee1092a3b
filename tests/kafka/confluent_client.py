#!/usr/bin/python3
"""confluent-kafka (Debian's python3-confluent-kafka, on librdkafka) against Gannet's Kafka listener.

Run by tests/kafka_client_test.cc, one mode per process:
  admin BOOTSTRAP                 AdminClient: create, describe/alter configs, add partitions,
                                  list groups, delete; prints "admin ok" or fails.
  produce BOOTSTRAP TOPIC FROM N  acks=all producer of values FROM..FROM+N-1 (keyed); prints
                                  "delivered N" once every record is acknowledged.
  produce-acked BOOTSTRAP TOPIC N SECONDS
                                  acks=all producer of N values spread over SECONDS, retrying
                                  through failures; prints "acked VALUE" for every acknowledged
                                  record and "failed VALUE ERROR" for every failed one.
  consume BOOTSTRAP TOPIC GROUP IDLE_S
                                  a group member: prints "assigned p,p,..." on each assignment and
                                  "record P O VALUE" per record, commits each synchronously, and
                                  exits (closing cleanly) after IDLE_S seconds without records or
                                  on SIGTERM.
"""
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewPartitions, NewTopic


def out(line):
    print(line, flush=True)


def admin(bootstrap):
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic("adm", num_partitions=3, replication_factor=3)]).values():
        f.result(30)
    # A second create of the same topic is refused with Kafka's error.
    try:
        a.create_topics([NewTopic("adm", num_partitions=3, replication_factor=3)])["adm"].result(30)
        raise SystemExit("a duplicate create succeeded")
    except KafkaException as e:
        if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
            raise
    deadline = time.time() + 30
    while "adm" not in a.list_topics(timeout=10).topics and time.time() < deadline:
        time.sleep(0.2)
    res = ConfigResource(ConfigResource.Type.TOPIC, "adm", set_config={"retention.ms": "3600000"})
    for f in a.alter_configs([res]).values():
        f.result(30)
    entries = {}
    for f in a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "adm")]).values():
        entries = f.result(30)
    got = {k: v.value for k, v in entries.items()}
    if got.get("retention.ms") != "3600000":
        raise SystemExit("describe_configs after alter_configs: %r" % got)
    # Every topic config is listed: the override as the topic's own, the rest as defaults.
    if got.get("cleanup.policy") != "delete" or not entries["cleanup.policy"].is_default:
        raise SystemExit("cleanup.policy should be listed as a default: %r" % entries.get("cleanup.policy"))
    if entries["retention.ms"].is_default or entries["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value:
        raise SystemExit("retention.ms should be the topic's own: source %r" % entries["retention.ms"].source)
    for f in a.create_partitions([NewPartitions("adm", 5)]).values():
        f.result(30)
    deadline = time.time() + 30
    while len(a.list_topics("adm", timeout=10).topics["adm"].partitions) != 5:
        if time.time() > deadline:
            raise SystemExit("adm did not get 5 partitions")
        time.sleep(0.2)
    groups = a.list_groups(timeout=10)
    out("groups %d" % len(groups))
    for f in a.delete_topics(["adm"]).values():
        f.result(30)
    deadline = time.time() + 30
    while "adm" in a.list_topics(timeout=10).topics:
        if time.time() > deadline:
            raise SystemExit("adm was not deleted")
        time.sleep(0.2)
    out("admin ok")


def produce(bootstrap, topic, first, n):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    delivered = [0]
    failed = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            delivered[0] += 1

    for i in range(first, first + n):
        while True:
            try:
                p.produce(topic, key=("k%d" % i).encode(), value=("v%d" % i).encode(), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    p.flush(60)
    if failed:
        raise SystemExit("delivery failed: %s" % failed[:3])
    out("delivered %d" % delivered[0])


def produce_acked(bootstrap, topic, n, seconds):
    # Idempotent (KIP-98): librdkafka gets a producer id (InitProducerId) and numbers its
    # batches, so its retries through a leader change never write a record twice.
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                  "enable.idempotence": True,
                  "message.timeout.ms": 120000, "retry.backoff.ms": 100})

    def on_delivery(err, msg):
        if err is None:
            out("acked " + msg.value().decode())
        else:
            out("failed %s %s" % (msg.value().decode(), err))

    start = time.time()
    for i in range(n):
        while time.time() < start + seconds * i / n:
            p.poll(0.005)
        while True:
            try:
                p.produce(topic, value=("d%d" % i).encode(), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(150)
    out("done %d" % left)


def consume(bootstrap, topic, group, idle_s):
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })

    def on_assign(consumer, partitions):
        out("assigned " + ",".join(str(tp.partition) for tp in partitions))

    c.subscribe([topic], on_assign=on_assign)
    last = time.time()
    while not stop[0] and time.time() - last < idle_s:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            out("error %s" % m.error())
            continue
        out("record %d %d %s" % (m.partition(), m.offset(), m.value().decode()))
        c.commit(message=m, asynchronous=False)
        last = time.time()
    c.close()
    out("closed")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "admin":
        admin(sys.argv[2])
    elif mode == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "produce-acked":
        produce_acked(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "consume":
        consume(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        raise SystemExit("unknown mode " + mode)
