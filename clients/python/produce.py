"""Produce records as messages: the broker partitions (as a Kafka producer would), batches,
compresses and appends them. Reads KEY:VALUE lines (or VALUE lines with --no-key) from stdin.

    python3 produce.py BOOTSTRAP TOPIC [--no-key] [--partition N] [--value-size N] [--header K=V]
    python3 produce.py BOOTSTRAP TOPIC --bench SECONDS [--batch N] [--value-size N]

Prints "PARTITION OFFSET KEY" per record, or "error NAME message". With --bench, sends requests of
--batch keyless records (default 500 of 1 KiB) for SECONDS and prints "records/s R".
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
a.add_argument("--bench", type=float)
a.add_argument("--batch", type=int, default=500)
args = a.parse_args()

if args.bench:
    import time
    stub = broker_stub(args.bootstrap.split(",")[0])
    value = b"x" * (args.value_size or 1024)
    req = api.broker.ProduceRecordsRequest(topic=args.topic, acks=1,
                                           records=[api.broker.ProducerRecord(value=value)] * args.batch)
    start, sent = time.time(), 0
    while time.time() - start < args.bench:
        resp = stub.ProduceRecords(req, timeout=60)
        if resp.error_code or resp.results[0].error_code:
            sys.exit("error %s" % error_name(resp.error_code or resp.results[0].error_code))
        sent += args.batch
    print("records/s %.0f" % (sent / (time.time() - start)))
    sys.exit(0)

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
