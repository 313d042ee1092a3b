"""Gannet's gRPC API from Python, with nothing of ours but the .proto files.

The stubs are generated from the repository's protos on first use (Debian's protoc and
grpc_python_plugin; runtime: python3-grpcio and python3-protobuf) into a cache directory keyed by
the protos' contents, then imported:

    from gannet_grpc import api, broker_stub
    stub = broker_stub("127.0.0.1:9192")
    resp = stub.Metadata(api.broker.MetadataRequest())
"""
import hashlib
import os
import subprocess
import sys
import types

import grpc

_HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.environ.get("GANNET_PROTO_ROOT", os.path.dirname(os.path.dirname(_HERE)))
_PROTOS = ["proto/errors.proto", "proto/broker.proto", "proto/controller.proto", "proto/group.proto"]


def _generate():
    digest = hashlib.sha256()
    for p in _PROTOS:
        with open(os.path.join(PROTO_ROOT, p), "rb") as f:
            digest.update(f.read())
    out = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "gannet", "pystubs",
                       digest.hexdigest()[:16])
    if not os.path.exists(os.path.join(out, "done")):
        os.makedirs(out, exist_ok=True)
        subprocess.check_call(["protoc", "-I" + PROTO_ROOT, "--python_out=" + out, "--grpc_python_out=" + out,
                               "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"] + _PROTOS)
        open(os.path.join(out, "done"), "w").close()
    if out not in sys.path:
        sys.path.insert(0, out)


_generate()
from proto import broker_pb2, broker_pb2_grpc, controller_pb2, errors_pb2  # noqa: E402

# The messages by package, e.g. api.broker.ProduceRecordsRequest, api.controller.CreateTopicsRequest.
api = types.SimpleNamespace(broker=broker_pb2, controller=controller_pb2, errors=errors_pb2)


def error_name(code):
    """ErrorCode number -> Kafka's name (e.g. 3 -> UNKNOWN_TOPIC_OR_PARTITION)."""
    return errors_pb2.ErrorCode.Name(code)


def broker_stub(address):
    """A stub for one broker's gRPC listener (host:port)."""
    return broker_pb2_grpc.BrokerStub(grpc.insecure_channel(address))


def leaders(stub, topic):
    """partition -> "host:port" of its leader, from Metadata."""
    md = stub.Metadata(broker_pb2.MetadataRequest(topics=[topic]), timeout=10)
    brokers = {b.broker_id: "%s:%d" % (b.host, b.port) for b in md.brokers}
    for t in md.topics:
        if t.name == topic:
            if t.error_code:
                raise RuntimeError("%s: %s" % (topic, error_name(t.error_code)))
            return {p.partition: brokers.get(p.leader) for p in t.partitions}
    raise RuntimeError("%s: not in the metadata" % topic)
