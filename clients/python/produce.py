"""Produce records as messages: the broker partitions (as a Kafka producer would), batches,
compresses and appends them. Reads KEY:VALUE lines (or VALUE lines with --no-key) from stdin.

    python3 produce.py BOOTSTRAP TOPIC [--no-key] [--partition N] [--value-size N] [--header K=V]

Prints "PARTITION OFFSET KEY" per record, or "error NAME message".
"""
import argparse
import sys

from gannet_grpc import api, broker_stub, error_name

a = argparse.ArgumentParser()
a.add_argument("bootstrap")
a.add_argument("topic")
a.add_argument("--no-key", action="store_true")
a.add_argument("--partition", type=int)
a.add_argument("--value-size", type=int, help="send one record with a value of this many bytes")
a.add_argument("--header", action="append", default=[])
args = a.parse_args()

headers = [api.broker.RecordHeader(key=k, value=v.encode()) for k, v in (h.split("=", 1) for h in args.header)]
records = []
if args.value_size is not None:
    records.append(api.broker.ProducerRecord(value=b"x" * args.value_size))
else:
    for line in sys.stdin.read().splitlines():
        r = api.broker.ProducerRecord(headers=headers)
        if args.no_key:
            r.value = line.encode()
        else:
            k, v = line.split(":", 1)
            r.key, r.value = k.encode(), v.encode()
        records.append(r)
for r in records:
    if args.partition is not None:
        r.partition = args.partition

stub = broker_stub(args.bootstrap.split(",")[0])
resp = stub.ProduceRecords(api.broker.ProduceRecordsRequest(topic=args.topic, records=records), timeout=60)
if resp.error_code:
    print("error %s %s" % (error_name(resp.error_code), resp.error_message))
    sys.exit(1)
failed = 0
for r, res in zip(records, resp.results):
    if res.error_code:
        failed += 1
        print("error %s %s" % (error_name(res.error_code), res.error_message))
    else:
        print("%d %d %s" % (res.partition, res.offset, r.key.decode() if r.HasField("key") else "-"))
sys.exit(1 if failed else 0)
