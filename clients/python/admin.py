"""Topics through any broker (forwarded to the active controller).

    python3 admin.py BOOTSTRAP create TOPIC PARTITIONS REPLICATION_FACTOR [KEY=VALUE ...]
    python3 admin.py BOOTSTRAP list
    python3 admin.py BOOTSTRAP delete TOPIC
"""
import sys

from gannet_grpc import api, broker_stub, error_name

stub = broker_stub(sys.argv[1].split(",")[0])
cmd = sys.argv[2]
if cmd == "create":
    configs = [api.controller.TopicConfigEntry(name=k, value=v) for k, v in (c.split("=", 1) for c in sys.argv[6:])]
    resp = stub.CreateTopics(api.controller.CreateTopicsRequest(topics=[api.controller.CreatableTopic(
        name=sys.argv[3], num_partitions=int(sys.argv[4]), replication_factor=int(sys.argv[5]), configs=configs)],
        timeout_ms=30000), timeout=60)
    errors = [t for t in resp.topics if t.error_code] or ([resp] if resp.error_code else [])
    for t in errors:
        print("error %s %s" % (error_name(t.error_code), t.error_message))
    if not errors:
        print("created %s" % sys.argv[3])
    sys.exit(1 if errors else 0)
elif cmd == "list":
    for t in stub.Metadata(api.broker.MetadataRequest(), timeout=10).topics:
        print("%s %d" % (t.name, len(t.partitions)))
elif cmd == "delete":
    resp = stub.DeleteTopics(api.controller.DeleteTopicsRequest(names=[sys.argv[3]]), timeout=60)
    print("deleted %s" % sys.argv[3] if not resp.error_code else "error " + error_name(resp.error_code))
