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
import time
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
from proto import broker_pb2, broker_pb2_grpc, controller_pb2, errors_pb2, group_pb2  # noqa: E402

# The messages by file, e.g. api.broker.ProduceRecordsRequest, api.controller.CreateTopicsRequest,
# api.group.ConsumerGroupHeartbeatRequest.
api = types.SimpleNamespace(broker=broker_pb2, controller=controller_pb2, errors=errors_pb2, group=group_pb2)


def error_name(code):
    """ErrorCode number -> Kafka's name (e.g. 3 -> UNKNOWN_TOPIC_OR_PARTITION)."""
    return errors_pb2.ErrorCode.Name(code)


class _Basic(grpc.AuthMetadataPlugin):
    """A user and password on every call (the broker checks them against the user's SCRAM
    credential; it takes them only over TLS)."""

    def __init__(self, user, password):
        import base64
        self._value = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    def __call__(self, context, callback):
        callback((("authorization", self._value),), None)


def channel(address):
    """A channel to one broker's gRPC listener (host:port). Plaintext, or, when the environment
    names a CA (GANNET_TLS_CA), TLS trusting it, with a client certificate (GANNET_TLS_CERT and
    GANNET_TLS_KEY, PEM files: the broker's ACLs then apply to User:<its subject>) or a user and
    password on every call (GANNET_USER, GANNET_PASSWORD)."""
    ca = os.environ.get("GANNET_TLS_CA")
    if not ca:
        return grpc.insecure_channel(address)

    def read(name):
        path = os.environ.get(name)
        return open(path, "rb").read() if path else None

    creds = grpc.ssl_channel_credentials(root_certificates=read("GANNET_TLS_CA"), private_key=read("GANNET_TLS_KEY"),
                                         certificate_chain=read("GANNET_TLS_CERT"))
    if os.environ.get("GANNET_USER"):
        creds = grpc.composite_channel_credentials(
            creds, grpc.metadata_call_credentials(_Basic(os.environ["GANNET_USER"], os.environ.get("GANNET_PASSWORD", ""))))
    return grpc.secure_channel(address, creds)


def broker_stub(address):
    """A stub for one broker's gRPC listener (host:port); see channel() for TLS and credentials."""
    return broker_pb2_grpc.BrokerStub(channel(address))


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


class GroupConsumer:
    """A member of a consumer group assigned by the broker (KIP-848): it heartbeats, reads the
    partitions it is given, and commits; partitions move one by one, and it keeps reading the
    others meanwhile.

        c = GroupConsumer("127.0.0.1:9192", "my-group", ["clicks"])
        while True:
            for record in c.poll():
                handle(record)   # record.partition, .offset, .key, .value, .headers
            c.commit()           # what poll() returned so far

    One thread: poll() heartbeats when due (the broker says how often) and applies what the
    answer says: partitions left out are committed and given up (told in the next heartbeat);
    new ones start at the group's committed offset (else `reset`: "earliest" or "latest").
    Fenced or unknown (e.g. after a session timeout): everything is dropped and it rejoins.
    """

    def __init__(self, bootstrap, group, topics, assignor="", client_id="python", reset="earliest"):
        self.bootstrap = bootstrap.split(",")[0]
        self.group, self.topics, self.assignor, self.client_id, self.reset = group, topics, assignor, client_id, reset
        self.member_id, self.epoch, self.interval = "", 0, 1.0
        self.owned, self.positions, self._leaders, self._stubs = set(), {}, {}, {}
        self._coord, self._next_beat = None, 0.0
        self.on_change = None  # called with the sorted owned (topic, partition) list after a change

    def _stub(self, address):
        if address not in self._stubs:
            self._stubs[address] = broker_stub(address)
        return self._stubs[address]

    def _coordinator(self):
        while self._coord is None:
            r = self._stub(self.bootstrap).FindCoordinator(group_pb2.FindCoordinatorRequest(key=self.group), timeout=10)
            if r.error_code == 0:
                self._coord = self._stub("%s:%d" % (r.host, r.port))
            else:
                time.sleep(0.1)
        return self._coord

    def _heartbeat(self):
        owned = group_pb2.PartitionSet()
        for topic in sorted({t for t, _ in self.owned}):
            owned.topics.add(topic=topic, partitions=sorted(p for t, p in self.owned if t == topic))
        req = group_pb2.ConsumerGroupHeartbeatRequest(
            group_id=self.group, member_id=self.member_id, member_epoch=self.epoch, client_id=self.client_id,
            subscribed_topic_names=self.topics, server_assignor=self.assignor, owned=owned)
        try:
            r = self._coordinator().ConsumerGroupHeartbeat(req, timeout=5)
        except grpc.RpcError:
            self._coord = None
            return
        if r.error_code in (errors_pb2.UNKNOWN_MEMBER_ID, errors_pb2.FENCED_MEMBER_EPOCH):
            self._set_owned(set(), commit=False)  # they may be someone else's already
            self.member_id, self.epoch = "", 0
            self._next_beat = 0.0
            return
        if r.error_code in (errors_pb2.NOT_COORDINATOR, errors_pb2.COORDINATOR_NOT_AVAILABLE,
                            errors_pb2.COORDINATOR_LOAD_IN_PROGRESS):
            self._coord = None
            return
        if r.error_code:
            raise RuntimeError("heartbeat: %s %s" % (error_name(r.error_code), r.error_message))
        self.member_id, self.epoch = r.member_id, r.member_epoch
        self.interval = r.heartbeat_interval_ms / 1000.0
        if r.HasField("assignment"):
            new = {(t.topic, p) for t in r.assignment.topics for p in t.partitions}
            if new != self.owned:
                self._set_owned(new, commit=True)
                self._next_beat = 0.0  # tell the coordinator at once
                return
        self._next_beat = time.monotonic() + self.interval

    def _set_owned(self, new, commit):
        gone = self.owned - new
        if gone and commit:
            self.commit([tp for tp in gone if tp in self.positions])
        for tp in gone:
            self.positions.pop(tp, None)
        added = new - self.owned
        if added:
            self.positions.update(self._committed(added))
        self.owned = set(new)
        if self.on_change:
            self.on_change(sorted(self.owned))

    def _committed(self, tps):
        req = group_pb2.OffsetFetchRequest(group_id=self.group)
        for topic in sorted({t for t, _ in tps}):
            req.topics.add(name=topic, partitions=sorted(p for t, p in tps if t == topic))
        r = self._coordinator().OffsetFetch(req, timeout=10)
        found = {(t.name, p.partition): p.committed_offset for t in r.topics for p in t.partitions}
        return {tp: found.get(tp, -1) if found.get(tp, -1) >= 0 else (0 if self.reset == "earliest" else -1)
                for tp in tps}

    def _leader(self, topic, partition):
        if (topic, partition) not in self._leaders:
            for p, address in leaders(self._stub(self.bootstrap), topic).items():
                self._leaders[(topic, p)] = address
        return self._leaders.get((topic, partition))

    def poll(self, max_wait_ms=100):
        """Heartbeats if due, then reads each owned partition once; returns the records read."""
        if time.monotonic() >= self._next_beat:
            self._heartbeat()
        out = []
        for (topic, partition) in sorted(self.owned):
            offset = self.positions.get((topic, partition), 0)
            leader = self._leader(topic, partition)
            if leader is None:
                continue
            try:
                r = self._stub(leader).FetchRecords(broker_pb2.FetchRecordsRequest(
                    topic=topic, partition=partition, offset=max(offset, 0),
                    max_wait_ms=max_wait_ms // max(1, len(self.owned))), timeout=10)
            except grpc.RpcError:
                self._leaders.clear()
                continue
            if r.error_code == errors_pb2.OFFSET_OUT_OF_RANGE:
                self.positions[(topic, partition)] = r.log_start_offset
                continue
            if r.error_code:
                self._leaders.clear()  # moved: ask again
                continue
            if offset < 0:  # "latest": start at the end
                self.positions[(topic, partition)] = r.high_watermark
                continue
            for rec in r.records:
                rec_topic = topic
                out.append(types.SimpleNamespace(topic=rec_topic, partition=rec.partition, offset=rec.offset,
                                                 key=rec.key if rec.HasField("key") else None,
                                                 value=rec.value if rec.HasField("value") else None,
                                                 headers=[(h.key, h.value) for h in rec.headers]))
            self.positions[(topic, partition)] = r.next_offset
        if not out and not self.owned:
            time.sleep(max_wait_ms / 1000.0)
        return out

    def commit(self, tps=None):
        """Commits the positions (of `tps`, default every owned partition) with the member epoch."""
        tps = sorted(self.owned if tps is None else tps)
        if not tps or not self.member_id:
            return
        for _ in range(50):
            req = group_pb2.OffsetCommitRequest(group_id=self.group, member_id=self.member_id,
                                                 generation_id=self.epoch)
            for topic in sorted({t for t, _ in tps}):
                req.topics.add(name=topic, partitions=[
                    group_pb2.OffsetCommitRequest.Partition(partition=p, committed_offset=self.positions[(t, p)])
                    for t, p in tps if t == topic and self.positions.get((t, p), -1) >= 0])
            r = self._coordinator().OffsetCommit(req, timeout=10)
            errors = {p.error_code for t in r.topics for p in t.partitions}
            if errors <= {0}:
                return
            if errors == {errors_pb2.STALE_MEMBER_EPOCH}:
                self._heartbeat()  # the epoch moved: learn it, then commit again
                continue
            raise RuntimeError("commit: %s" % ",".join(error_name(e) for e in errors))

    def close(self):
        """Commits, then leaves: the partitions go to the others at once."""
        self.commit()
        self._coordinator().ConsumerGroupHeartbeat(group_pb2.ConsumerGroupHeartbeatRequest(
            group_id=self.group, member_id=self.member_id, member_epoch=-1), timeout=5)
