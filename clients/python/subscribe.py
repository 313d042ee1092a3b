"""Consume in a broker-assigned group over one Subscribe stream: the broker heartbeats, assigns,
reads and commits; this program only iterates and says what it processed.

    python3 subscribe.py BOOTSTRAP GROUP TOPIC[,TOPIC...] [--count N] [--earliest]

Prints "owns TOPIC:P ..." when its partitions change and "PARTITION OFFSET KEY VALUE" per record;
commits after each batch of records; after N records (0: never) it closes the stream, which leaves
the group.
"""
import argparse
import queue

from gannet_grpc import api, broker_stub, error_name

p = argparse.ArgumentParser()
p.add_argument("bootstrap")
p.add_argument("group")
p.add_argument("topics")
p.add_argument("--count", type=int, default=0)
p.add_argument("--earliest", action="store_true")
a = p.parse_args()

requests = queue.Queue()  # what we send: the Start, then commits; None closes our side
requests.put(api.broker.SubscribeRequest(start=api.broker.SubscribeRequest.Start(
    group_id=a.group, topics=a.topics.split(","), client_id="python-subscribe",
    auto_offset_reset="earliest" if a.earliest else "latest")))
stream = broker_stub(a.bootstrap.split(",")[0]).Subscribe(iter(requests.get, None))
read, closing = 0, False
for m in stream:  # until the broker ends the stream (after our close, once our commits are in)
    kind = m.WhichOneof("response")
    if kind == "assignment" and not closing:
        print("owns " + " ".join("%s:%d" % (t.topic, p) for t in m.assignment.partitions for p in t.partitions),
              flush=True)
    elif kind == "records" and not closing:
        for r in m.records.records:
            print("%d %d %s %s" % (r.partition, r.offset, r.key.decode() if r.HasField("key") else "-",
                                   r.value.decode() if r.HasField("value") else "-"), flush=True)
        read += len(m.records.records)
        requests.put(api.broker.SubscribeRequest(commit=api.broker.SubscribeRequest.Commit(offsets=[
            api.broker.SubscribeRequest.Commit.Offset(topic=m.records.topic, partition=m.records.partition,
                                                      offset=m.records.records[-1].offset + 1)])))
    elif kind == "commit" and m.commit.error_code:
        print("commit error %s %s" % (error_name(m.commit.error_code), m.commit.error_message), flush=True)
    elif kind == "error":
        print("error %s %s" % (error_name(m.error.error_code), m.error.error_message), flush=True)
        break
    if a.count and read >= a.count and not closing:
        closing = True
        requests.put(None)  # close our side: the broker commits what we sent, leaves the group, ends the stream
