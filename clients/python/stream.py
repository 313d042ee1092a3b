"""The streaming calls: ProduceRecordsStream (requests answered in order on one stream) and
ConsumeRecords (a partition's records pushed as they arrive, until the client stops).

    python3 stream.py BOOTSTRAP TOPIC PARTITION COUNT

Sends COUNT keyless records to PARTITION in requests of 10 on one stream, printing "sent OFFSET"
for each, then follows the partition from offset 0 until it has COUNT records, printing
"got OFFSET VALUE" for each.
"""
import sys

from gannet_grpc import api, broker_stub, error_name, leaders

bootstrap, topic, partition, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
stub = broker_stub(leaders(broker_stub(bootstrap.split(",")[0]), topic)[partition])


def requests():
    for first in range(0, count, 10):
        yield api.broker.ProduceRecordsRequest(topic=topic, records=[
            api.broker.ProducerRecord(value=("s%d" % i).encode(), partition=partition)
            for i in range(first, min(first + 10, count))])


for resp in stub.ProduceRecordsStream(requests(), timeout=60):
    for r in resp.results:
        if r.error_code:
            sys.exit("error %s %s" % (error_name(r.error_code), r.error_message))
        print("sent %d" % r.offset)

got = 0
stream = stub.ConsumeRecords(api.broker.FetchRecordsRequest(topic=topic, partition=partition, offset=0,
                                                             max_wait_ms=200), timeout=60)
for resp in stream:
    if resp.error_code:
        sys.exit("error %s %s" % (error_name(resp.error_code), resp.error_message))
    for r in resp.records:
        print("got %d %s" % (r.offset, r.value.decode()))
        got += 1
    if got >= count:
        stream.cancel()
        break
