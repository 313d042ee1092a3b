"""Read a topic's records as messages, every partition from its leader, from the beginning up to
the high watermark.

    python3 consume.py BOOTSTRAP TOPIC

Prints "PARTITION OFFSET KEY VALUE [K=V ...]" per record.
"""
import sys

from gannet_grpc import api, broker_stub, error_name, leaders

bootstrap, topic = sys.argv[1], sys.argv[2]
for partition, leader in sorted(leaders(broker_stub(bootstrap.split(",")[0]), topic).items()):
    stub = broker_stub(leader)
    offset = 0
    while True:
        resp = stub.FetchRecords(api.broker.FetchRecordsRequest(topic=topic, partition=partition, offset=offset,
                                                                max_wait_ms=100), timeout=30)
        if resp.error_code:
            print("error %s %s" % (error_name(resp.error_code), resp.error_message))
            sys.exit(1)
        for r in resp.records:
            hs = " ".join("%s=%s" % (h.key, h.value.decode()) for h in r.headers)
            print(("%d %d %s %s %s" % (r.partition, r.offset, r.key.decode() if r.HasField("key") else "-",
                                       r.value.decode() if r.HasField("value") else "-", hs)).rstrip())
        offset = resp.next_offset
        if offset >= resp.high_watermark:
            break
