"""Consume as a member of a consumer group whose partitions the broker assigns (KIP-848).

    python3 group_consume.py BOOTSTRAP GROUP TOPIC[,TOPIC...] [--count N] [--assignor uniform|range]

Prints "PARTITION OFFSET KEY VALUE" per record and "owns TOPIC:P,P ..." whenever its partitions
change; commits after every poll; stops (committing and leaving) after N records or on Ctrl-C.
"""
import argparse
import sys

from gannet_grpc import GroupConsumer

p = argparse.ArgumentParser()
p.add_argument("bootstrap")
p.add_argument("group")
p.add_argument("topics")
p.add_argument("--count", type=int, default=0)
p.add_argument("--assignor", default="")
a = p.parse_args()

consumer = GroupConsumer(a.bootstrap, a.group, a.topics.split(","), assignor=a.assignor)
consumer.on_change = lambda owned: print("owns " + " ".join("%s:%d" % tp for tp in owned), flush=True)
read = 0
try:
    while not a.count or read < a.count:
        for r in consumer.poll():
            print("%d %d %s %s" % (r.partition, r.offset, r.key.decode() if r.key is not None else "-",
                                   r.value.decode() if r.value is not None else "-"), flush=True)
            read += 1
        consumer.commit()
except KeyboardInterrupt:
    pass
consumer.close()
sys.stdout.flush()
