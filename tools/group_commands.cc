// gannet group list | describe | reset-offsets | delete: consumer-group administration through
// the brokers' client listeners (proto/group.proto). list asks every broker (each lists the groups
// it coordinates); the others ask the group's coordinator, found with FindCoordinator.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/consumer_protocol.h"
#include "client/metadata_cache.h"
#include "tools/data_commands.h"

namespace gannet::tools {
namespace {

namespace bv1 = gannet::broker::v1;
namespace ev1 = gannet::v1;
using Clock = std::chrono::steady_clock;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

int usage(const std::string& message) {
  std::fprintf(stderr, "gannet: %s\n", message.c_str());
  return kExitUsage;
}

std::string code(int c) {
  const std::string& n = ev1::ErrorCode_Name(c);
  return n.empty() ? "ERROR_" + std::to_string(c) : n;
}

struct Ctx {
  std::vector<std::string> bootstrap;
  int32_t timeout_ms = 30'000;
  bool json = false;
};

std::optional<Ctx> context(const Args& a, int* exit_code) {
  Ctx c;
  if (auto s = a.last("bootstrap-server")) {
    for (const auto& x : split(*s, ',')) {
      if (!x.empty()) c.bootstrap.push_back(x);
    }
  }
  if (c.bootstrap.empty()) {
    *exit_code = usage("--bootstrap-server is required");
    return std::nullopt;
  }
  if (auto t = a.last("timeout-ms")) {
    auto v = parse_int32(*t);
    if (!v || *v <= 0) {
      *exit_code = usage("--timeout-ms " + *t + ": not a positive integer");
      return std::nullopt;
    }
    c.timeout_ms = *v;
  }
  const std::string out = a.last("output").value_or("text");
  if (out != "text" && out != "json") {
    *exit_code = usage("--output " + out + ": expected text or json");
    return std::nullopt;
  }
  c.json = out == "json";
  return c;
}

void set_deadline(grpc::ClientContext* ctx, int64_t ms) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
}

// Prints an error (and its JSON form) and returns the error exit status.
int fail(const Ctx& c, const std::string& what, int error_code, const std::string& message) {
  std::fprintf(stderr, "gannet: %s: %s%s%s\n", what.c_str(), code(error_code).c_str(), message.empty() ? "" : ": ",
               message.c_str());
  if (c.json) {
    Json j;
    j.begin_object().field("error_code", code(error_code)).field("error_message", what + (message.empty() ? "" : ": " + message));
    j.end_object().print();
  }
  return kExitError;
}

// The group's coordinator, retrying while it is being elected or loaded, within the timeout.
bv1::Broker::Stub* find_coordinator(client::MetadataCache& md, const Ctx& c, const std::string& group, int* error) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(c.timeout_ms);
  size_t attempt = 0;
  *error = ev1::COORDINATOR_NOT_AVAILABLE;
  while (Clock::now() < deadline) {
    bv1::Broker::Stub* any = md.any_broker(attempt++);
    if (!any) break;
    bv1::FindCoordinatorRequest req;
    req.set_key(group);
    bv1::FindCoordinatorResponse resp;
    grpc::ClientContext ctx;
    set_deadline(&ctx, 5'000);
    grpc::Status st = any->FindCoordinator(&ctx, req, &resp);
    if (st.ok()) {
      if (resp.error_code() == ev1::NONE) {
        if (!md.broker(resp.node_id())) md.refresh();
        if (auto* s = md.broker(resp.node_id())) return s;
      }
      *error = resp.error_code();
      if (resp.error_code() == ev1::INVALID_GROUP_ID) return nullptr;
    } else {
      *error = ev1::REQUEST_TIMED_OUT;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return nullptr;
}

// The latest offset (high watermark) of each partition, for lag; -1 where unknown.
std::map<client::TopicPartition, int64_t> end_offsets(client::MetadataCache& md,
                                                      const std::set<client::TopicPartition>& tps, int64_t timestamp) {
  std::map<client::TopicPartition, int64_t> out;
  std::map<int32_t, std::vector<client::TopicPartition>> by_leader;
  for (const auto& tp : tps) by_leader[md.leader(tp.topic, tp.partition)].push_back(tp);
  for (const auto& [leader, list] : by_leader) {
    bv1::Broker::Stub* stub = md.broker(leader);
    if (!stub) continue;
    bv1::ListOffsetsRequest req;
    for (const auto& tp : list) {
      auto* p = req.add_partitions();
      p->set_topic(tp.topic);
      p->set_partition(tp.partition);
      p->set_timestamp(timestamp);
      p->set_current_leader_epoch(-1);
    }
    bv1::ListOffsetsResponse resp;
    grpc::ClientContext ctx;
    set_deadline(&ctx, 10'000);
    if (!stub->ListOffsets(&ctx, req, &resp).ok()) continue;
    for (const auto& r : resp.partitions()) {
      if (r.error_code() == ev1::NONE) out[{r.topic(), r.partition()}] = r.offset();
    }
  }
  return out;
}

std::optional<int64_t> parse_int64(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t used = 0;
  try {
    const long long v = std::stoll(s, &used, 10);
    if (used != s.size()) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

// Milliseconds since the epoch, or an ISO-8601 UTC date-time "YYYY-MM-DDTHH:MM:SS[.mmm][Z]".
std::optional<int64_t> parse_time_ms(const std::string& s) {
  if (auto ms = parse_int64(s); ms && *ms >= 0) return ms;
  int y, mo, d, h, mi, sec, frac = 0;
  char tail[8] = {0};
  const int n = std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%1s", &y, &mo, &d, &h, &mi, &sec, &frac, tail);
  const int n2 = n >= 6 ? n : 0;
  if (n2 < 6) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  const time_t t = timegm(&tm);
  if (t < 0) return std::nullopt;
  return static_cast<int64_t>(t) * 1000 + (n >= 7 ? frac : 0);
}

// The start of every command on one group: the flags, the GROUP operand, the group's coordinator.
struct GroupCall {
  Ctx c;
  std::string group;
  std::unique_ptr<client::MetadataCache> md;
  bv1::Broker::Stub* coord = nullptr;
};

std::optional<GroupCall> group_call(const Args& a, const char* command, int* exit_code) {
  auto c = context(a, exit_code);
  if (!c) return std::nullopt;
  const auto ops = a.operands();
  if (ops.size() != 1) {
    *exit_code = usage(std::string("group ") + command + ": one group id is required");
    return std::nullopt;
  }
  GroupCall g{*c, ops[0], std::make_unique<client::MetadataCache>(c->bootstrap), nullptr};
  int err = 0;
  g.coord = find_coordinator(*g.md, g.c, g.group, &err);
  if (!g.coord) {
    *exit_code = fail(g.c, g.group, err, "no coordinator for the group");
    return std::nullopt;
  }
  return g;
}

}  // namespace

int group_list_command(const Args& a) {
  int rc = 0;
  auto c = context(a, &rc);
  if (!c) return rc;
  client::MetadataCache md(c->bootstrap);
  if (!md.refresh()) return fail(*c, "group list", ev1::REQUEST_TIMED_OUT, "cannot reach the cluster");
  // Every broker coordinates some groups: ask them all.
  bv1::MetadataResponse meta;
  {
    grpc::ClientContext ctx;
    set_deadline(&ctx, c->timeout_ms);
    bv1::MetadataRequest req;
    req.add_topics("__consumer_offsets");
    if (!md.any_broker()->Metadata(&ctx, req, &meta).ok()) {
      return fail(*c, "group list", ev1::REQUEST_TIMED_OUT, "cannot reach the cluster");
    }
  }
  std::map<std::string, bv1::ListGroupsResponse::Group> groups;
  std::vector<std::string> unreachable;
  for (const auto& b : meta.brokers()) {
    if (b.fenced()) continue;
    bv1::Broker::Stub* stub = md.broker(b.broker_id());
    if (!stub) continue;
    bv1::ListGroupsRequest req;
    bv1::ListGroupsResponse resp;
    grpc::ClientContext ctx;
    set_deadline(&ctx, c->timeout_ms);
    if (!stub->ListGroups(&ctx, req, &resp).ok()) {
      unreachable.push_back(std::to_string(b.broker_id()));
      continue;
    }
    for (const auto& g : resp.groups()) groups[g.group_id()] = g;
  }
  if (!unreachable.empty()) {
    std::fprintf(stderr, "gannet: warning: broker(s) %s did not answer; their groups are missing\n",
                 join(unreachable, ",").c_str());
  }
  if (c->json) {
    Json j;
    j.begin_object().key("groups").begin_array();
    for (const auto& [id, g] : groups) {
      j.begin_object().field("group", id).field("type", g.group_type()).field("state", g.state());
      j.field("protocol_type", g.protocol_type()).end_object();
    }
    j.end_array().end_object().print();
    return 0;
  }
  Table t({"GROUP", "TYPE", "STATE", "PROTOCOL-TYPE"});
  for (const auto& [id, g] : groups) {
    t.add({id, g.group_type().empty() ? "-" : g.group_type(), g.state(), g.protocol_type().empty() ? "-" : g.protocol_type()});
  }
  t.print();
  return 0;
}

int group_describe_command(const Args& a) {
  int rc = 0;
  auto call = group_call(a, "describe", &rc);
  if (!call) return rc;
  const Ctx* c = &call->c;
  const std::string& group = call->group;
  client::MetadataCache& md = *call->md;
  bv1::Broker::Stub* coord = call->coord;
  bv1::DescribeGroupsRequest dreq;
  dreq.add_group_ids(group);
  bv1::DescribeGroupsResponse dresp;
  {
    grpc::ClientContext ctx;
    set_deadline(&ctx, c->timeout_ms);
    if (!coord->DescribeGroups(&ctx, dreq, &dresp).ok() || dresp.groups_size() != 1) {
      return fail(*c, group, ev1::REQUEST_TIMED_OUT, "the coordinator did not answer");
    }
  }
  const bv1::DescribedGroup& d = dresp.groups(0);
  if (d.error_code() != ev1::NONE) return fail(*c, group, d.error_code(), d.error_code() == ev1::GROUP_ID_NOT_FOUND ? "no such group" : "");
  // A broker-assigned group (KIP-848) has members' epochs and assignments of its own.
  std::optional<bv1::DescribedConsumerGroup> cg;
  if (d.protocol_type() == "consumer" && d.members_size() > 0 && d.leader().empty()) {
    bv1::ConsumerGroupDescribeRequest creq;
    creq.add_group_ids(group);
    bv1::ConsumerGroupDescribeResponse cresp;
    grpc::ClientContext ctx;
    set_deadline(&ctx, c->timeout_ms);
    if (coord->ConsumerGroupDescribe(&ctx, creq, &cresp).ok() && cresp.groups_size() == 1 &&
        cresp.groups(0).error_code() == ev1::NONE) {
      cg = cresp.groups(0);
    }
  }
  bv1::OffsetFetchRequest oreq;
  oreq.set_group_id(group);
  bv1::OffsetFetchResponse oresp;
  {
    grpc::ClientContext ctx;
    set_deadline(&ctx, c->timeout_ms);
    if (!coord->OffsetFetch(&ctx, oreq, &oresp).ok()) return fail(*c, group, ev1::REQUEST_TIMED_OUT, "the coordinator did not answer");
    if (oresp.error_code() != ev1::NONE) return fail(*c, group, oresp.error_code(), oresp.error_message());
  }
  // Rows: every partition assigned to a member or with a committed offset.
  struct Row {
    int64_t committed = -1;
    const bv1::DescribedGroup::Member* member = nullptr;
  };
  std::map<client::TopicPartition, Row> rows;
  std::map<std::string, std::vector<client::TopicPartition>> member_parts;
  for (const auto& m : d.members()) {
    if (cg) {
      for (const auto& cm : cg->members()) {
        if (cm.member_id() != m.member_id()) continue;
        for (const auto& t : cm.assignment()) {
          for (int32_t p : t.partitions()) {
            rows[{t.topic(), p}].member = &m;
            member_parts[m.member_id()].push_back({t.topic(), p});
          }
        }
      }
      continue;
    }
    auto asg = client::decode_assignment(m.assignment());
    if (!asg) continue;
    for (const auto& tp : asg->partitions) {
      rows[tp].member = &m;
      member_parts[m.member_id()].push_back(tp);
    }
  }
  auto partitions_text = [](const google::protobuf::RepeatedPtrField<bv1::TopicPartitions>& tps) {
    std::string s;
    for (const auto& t : tps) {
      std::string ps;
      for (int32_t p : t.partitions()) ps += (ps.empty() ? "" : ",") + std::to_string(p);
      s += (s.empty() ? "" : " ") + t.topic() + ":" + ps;
    }
    return s.empty() ? std::string("-") : s;
  };
  for (const auto& t : oresp.topics()) {
    for (const auto& p : t.partitions()) rows[{t.name(), p.partition()}].committed = p.committed_offset();
  }
  std::set<client::TopicPartition> tps;
  for (const auto& [tp, r] : rows) tps.insert(tp);
  md.refresh();
  auto ends = end_offsets(md, tps, -1);
  auto lag_of = [&](const client::TopicPartition& tp, const Row& r) -> int64_t {
    auto e = ends.find(tp);
    if (e == ends.end() || r.committed < 0) return -1;
    return std::max<int64_t>(0, e->second - r.committed);
  };
  if (c->json) {
    Json j;
    j.begin_object().field("group", group).field("type", cg ? "consumer" : "classic").field("state", d.state());
    j.field("protocol_type", d.protocol_type());
    j.field("protocol", d.protocol()).field("generation", d.generation_id()).field("leader", d.leader());
    if (cg) j.field("group_epoch", cg->group_epoch()).field("assignment_epoch", cg->assignment_epoch());
    j.key("members").begin_array();
    for (const auto& m : d.members()) {
      j.begin_object().field("member_id", m.member_id()).field("client_id", m.client_id()).field("host", m.client_host());
      if (cg) {
        for (const auto& cm : cg->members()) {
          if (cm.member_id() != m.member_id()) continue;
          j.field("member_epoch", cm.member_epoch()).field("member_state", cm.state());
          j.key("target_partitions").begin_array();
          for (const auto& t : cm.target_assignment()) {
            for (int32_t p : t.partitions()) j.begin_object().field("topic", t.topic()).field("partition", p).end_object();
          }
          j.end_array();
        }
      }
      j.key("partitions").begin_array();
      for (const auto& tp : member_parts[m.member_id()]) j.begin_object().field("topic", tp.topic).field("partition", tp.partition).end_object();
      j.end_array().end_object();
    }
    j.end_array().key("offsets").begin_array();
    for (const auto& [tp, r] : rows) {
      j.begin_object().field("topic", tp.topic).field("partition", tp.partition).field("committed_offset", r.committed);
      auto e = ends.find(tp);
      j.field("log_end_offset", e == ends.end() ? -1 : e->second).field("lag", lag_of(tp, r));
      j.field("member_id", r.member ? r.member->member_id() : "");
      j.end_object();
    }
    j.end_array().end_object().print();
    return 0;
  }
  if (cg) {
    std::printf("group %s: type consumer (assigned by the broker), state %s, assignor %s, group epoch %d, "
                "assignment epoch %d, %d member(s)\n",
                group.c_str(), cg->state().c_str(), cg->assignor_name().c_str(), cg->group_epoch(),
                cg->assignment_epoch(), cg->members_size());
    Table mt({"CONSUMER-ID", "EPOCH", "STATE", "ASSIGNED", "TARGET", "HOST", "CLIENT-ID"});
    for (const auto& m : cg->members()) {
      mt.add({m.member_id(), std::to_string(m.member_epoch()), m.state(), partitions_text(m.assignment()),
              partitions_text(m.target_assignment()), m.client_host(), m.client_id()});
    }
    mt.print();
    std::printf("\n");
  } else {
    std::printf("group %s: type classic, state %s, protocol %s, generation %d, %d member(s)%s\n", group.c_str(),
                d.state().c_str(), d.protocol().empty() ? "-" : d.protocol().c_str(), d.generation_id(),
                d.members_size(), d.members_size() > 0 ? (", leader " + d.leader()).c_str() : "");
  }
  Table t({"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"});
  for (const auto& [tp, r] : rows) {
    auto e = ends.find(tp);
    const int64_t lag = lag_of(tp, r);
    t.add({tp.topic, std::to_string(tp.partition), r.committed >= 0 ? std::to_string(r.committed) : "-",
           e == ends.end() ? "-" : std::to_string(e->second), lag >= 0 ? std::to_string(lag) : "-",
           r.member ? r.member->member_id() : "-", r.member ? r.member->client_host() : "-",
           r.member ? r.member->client_id() : "-"});
  }
  t.print();
  return 0;
}

int group_reset_offsets_command(const Args& a) {
  int rc = 0;
  auto c = context(a, &rc);
  if (!c) return rc;
  const auto ops = a.operands();
  if (ops.size() != 1) return usage("group reset-offsets: one group id is required");
  const std::string group = ops[0];
  const auto topic = a.last("topic");
  if (!topic) return usage("group reset-offsets: --topic is required");
  const int modes = (a.has("to-earliest") ? 1 : 0) + (a.has("to-latest") ? 1 : 0) + (a.has("to-offset") ? 1 : 0) +
                    (a.has("shift-by") ? 1 : 0) + (a.has("to-datetime") ? 1 : 0);
  if (modes != 1) {
    return usage("group reset-offsets: give exactly one of --to-earliest, --to-latest, --to-offset N, --shift-by N, "
                 "--to-datetime MS|YYYY-MM-DDTHH:MM:SS");
  }
  int64_t to_offset = -1, shift_by = 0, to_time = -1;
  if (auto v = a.last("to-offset")) {
    auto n = parse_int64(*v);
    if (!n || *n < 0) return usage("--to-offset " + *v + ": expected a number >= 0");
    to_offset = *n;
  }
  if (auto v = a.last("shift-by")) {
    auto n = parse_int64(*v);
    if (!n) return usage("--shift-by " + *v + ": expected a (possibly negative) number");
    shift_by = *n;
  }
  if (auto v = a.last("to-datetime")) {
    auto t = parse_time_ms(*v);
    if (!t) return usage("--to-datetime " + *v + ": expected milliseconds since the epoch or YYYY-MM-DDTHH:MM:SS (UTC)");
    to_time = *t;
  }
  client::MetadataCache md(c->bootstrap);
  const int32_t n = md.partition_count(*topic);
  if (n <= 0) return fail(*c, *topic, ev1::UNKNOWN_TOPIC_OR_PARTITION, "unknown topic");
  std::set<client::TopicPartition> tps;
  if (auto p = a.last("partition")) {
    auto v = parse_int32(*p);
    if (!v || *v < 0 || *v >= n) return usage("--partition " + *p + ": the topic has " + std::to_string(n) + " partitions");
    tps.insert({*topic, *v});
  } else {
    for (int32_t i = 0; i < n; ++i) tps.insert({*topic, i});
  }
  int err = 0;
  bv1::Broker::Stub* coord = find_coordinator(md, *c, group, &err);
  if (!coord) return fail(*c, group, err, "no coordinator for the group");
  // Offsets of a group in use belong to its members: refuse unless the group is empty.
  {
    bv1::DescribeGroupsRequest dreq;
    dreq.add_group_ids(group);
    bv1::DescribeGroupsResponse dresp;
    grpc::ClientContext ctx;
    set_deadline(&ctx, c->timeout_ms);
    if (coord->DescribeGroups(&ctx, dreq, &dresp).ok() && dresp.groups_size() == 1 &&
        dresp.groups(0).error_code() == ev1::NONE && dresp.groups(0).state() != "Empty") {
      return fail(*c, group, ev1::NON_EMPTY_GROUP,
                  "the group has active members (state " + dresp.groups(0).state() + "); stop its consumers first");
    }
  }
  std::map<client::TopicPartition, int64_t> targets;
  if (to_offset >= 0) {
    // Clamped to what the log holds, as Kafka does.
    auto lo = end_offsets(md, tps, -2), hi = end_offsets(md, tps, -1);
    for (const auto& tp : tps) {
      int64_t o = to_offset;
      if (lo.count(tp)) o = std::max(o, lo[tp]);
      if (hi.count(tp)) o = std::min(o, hi[tp]);
      targets[tp] = o;
    }
  } else if (a.has("shift-by")) {
    // From the committed offset (the log end where there is none), clamped to the log.
    bv1::OffsetFetchRequest oreq;
    oreq.set_group_id(group);
    auto* ot = oreq.add_topics();
    ot->set_name(*topic);
    for (const auto& tp : tps) ot->add_partitions(tp.partition);
    bv1::OffsetFetchResponse oresp;
    grpc::ClientContext ctx;
    set_deadline(&ctx, c->timeout_ms);
    if (!coord->OffsetFetch(&ctx, oreq, &oresp).ok()) return fail(*c, group, ev1::REQUEST_TIMED_OUT, "the coordinator did not answer");
    if (oresp.error_code() != ev1::NONE) return fail(*c, group, oresp.error_code(), oresp.error_message());
    auto lo = end_offsets(md, tps, -2), hi = end_offsets(md, tps, -1);
    for (const auto& t : oresp.topics()) {
      for (const auto& p : t.partitions()) {
        const client::TopicPartition tp{t.name(), p.partition()};
        if (!lo.count(tp) || !hi.count(tp)) continue;
        const int64_t from = p.committed_offset() >= 0 ? p.committed_offset() : hi[tp];
        targets[tp] = std::clamp(from + shift_by, lo[tp], hi[tp]);
      }
    }
  } else if (to_time >= 0) {
    // The first record at or after the time; the log end if none is.
    auto at = end_offsets(md, tps, to_time), hi = end_offsets(md, tps, -1);
    for (const auto& tp : tps) {
      if (!hi.count(tp)) continue;
      targets[tp] = at.count(tp) && at[tp] >= 0 ? at[tp] : hi[tp];
    }
  } else {
    targets = end_offsets(md, tps, a.has("to-earliest") ? -2 : -1);
  }
  if (targets.size() != tps.size()) return fail(*c, group, ev1::LEADER_NOT_AVAILABLE, "could not read every partition's offsets");
  const bool dry_run = a.has("dry-run");
  if (!dry_run) {
    bv1::OffsetCommitRequest req;
    req.set_group_id(group);
    req.set_generation_id(-1);
    auto* t = req.add_topics();
    t->set_name(*topic);
    for (const auto& [tp, o] : targets) {
      auto* p = t->add_partitions();
      p->set_partition(tp.partition);
      p->set_committed_offset(o);
      p->set_committed_leader_epoch(-1);
    }
    bv1::OffsetCommitResponse resp;
    grpc::ClientContext ctx;
    set_deadline(&ctx, c->timeout_ms);
    if (!coord->OffsetCommit(&ctx, req, &resp).ok()) return fail(*c, group, ev1::REQUEST_TIMED_OUT, "the coordinator did not answer");
    for (const auto& tr : resp.topics()) {
      for (const auto& pr : tr.partitions()) {
        if (pr.error_code() != ev1::NONE) {
          return fail(*c, group + " " + tr.name() + "-" + std::to_string(pr.partition()), pr.error_code(), resp.error_message());
        }
      }
    }
  }
  if (c->json) {
    Json j;
    j.begin_object().field("group", group).field_bool("dry_run", dry_run).key("offsets").begin_array();
    for (const auto& [tp, o] : targets) j.begin_object().field("topic", tp.topic).field("partition", tp.partition).field("offset", o).end_object();
    j.end_array().end_object().print();
    return 0;
  }
  if (dry_run) std::printf("dry run: nothing committed\n");
  Table tb({"TOPIC", "PARTITION", "NEW-OFFSET"});
  for (const auto& [tp, o] : targets) tb.add({tp.topic, std::to_string(tp.partition), std::to_string(o)});
  tb.print();
  return 0;
}

int group_delete_command(const Args& a) {
  int rc = 0;
  auto call = group_call(a, "delete", &rc);
  if (!call) return rc;
  const Ctx* c = &call->c;
  const std::string& group = call->group;
  bv1::Broker::Stub* coord = call->coord;
  bv1::DeleteGroupsRequest req;
  req.add_group_ids(group);
  bv1::DeleteGroupsResponse resp;
  grpc::ClientContext ctx;
  set_deadline(&ctx, c->timeout_ms);
  if (!coord->DeleteGroups(&ctx, req, &resp).ok() || resp.results_size() != 1) {
    return fail(*c, group, ev1::REQUEST_TIMED_OUT, "the coordinator did not answer");
  }
  if (resp.results(0).error_code() != ev1::NONE) return fail(*c, group, resp.results(0).error_code(), resp.results(0).error_message());
  if (c->json) {
    Json j;
    j.begin_object().field("group", group).field("error_code", "NONE").end_object().print();
  } else {
    std::printf("deleted group %s\n", group.c_str());
  }
  return 0;
}

}  // namespace gannet::tools
