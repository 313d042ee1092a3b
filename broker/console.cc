#include "broker/console.h"

#include <future>
#include <map>

#include "broker/broker_server.h"
#include "broker/group_coordinator.h"
#include "broker/record_messages.h"

namespace gannet::broker {

namespace cv1 = gannet::controller::v1;

namespace {

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size()) {
      const std::string hex = s.substr(i + 1, 2);
      char* end = nullptr;
      const long v = std::strtol(hex.c_str(), &end, 16);
      if (end == hex.c_str() + 2) {
        out.push_back(static_cast<char>(v));
        i += 2;
      } else {
        out.push_back('%');
      }
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string find_param(const std::string& text, const std::string& key) {
  size_t at = 0;
  while (at <= text.size()) {
    size_t amp = text.find('&', at);
    if (amp == std::string::npos) amp = text.size();
    const std::string pair = text.substr(at, amp - at);
    const size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) == key) return eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
    at = amp + 1;
  }
  return "";
}

std::string num(int64_t v) { return std::to_string(v); }

HttpResponse error(const std::string& status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = "{\"error\":" + json_string(message) + "}";
  return r;
}

// A value shown in the browser: text when printable UTF-8-ish, else hex.
std::string shown(const std::string& bytes) {
  bool text = true;
  for (unsigned char c : bytes) {
    if (c < 0x20 && c != '\n' && c != '\t') text = false;
  }
  if (text) return json_string(bytes);
  static const char* kHex = "0123456789abcdef";
  std::string hex = "0x";
  for (unsigned char c : bytes) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return json_string(hex);
}

}  // namespace

std::string HttpRequest::param(const std::string& key) const {
  std::string v = find_param(query, key);
  if (v.empty() && method == "POST") v = find_param(body, key);
  return v;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

HttpResponse BrokerServer::console(const HttpRequest& req) {
  if (req.method == "GET" && (req.path == "/" || req.path == "/console")) {
    HttpResponse r;
    r.type = "text/html; charset=utf-8";
    r.body = console_page();
    return r;
  }
  const auto image = publisher_->image();
  if (req.method == "GET" && req.path == "/api/overview") {
    std::string brokers;
    for (const auto& [id, b] : image->brokers()) {
      std::string endpoints;
      for (const auto& e : b.endpoints) {
        endpoints += std::string(endpoints.empty() ? "" : ",") + json_string(e.name + "://" + e.host + ":" + num(e.port));
      }
      brokers += std::string(brokers.empty() ? "" : ",") + "{\"id\":" + num(id) + ",\"fenced\":" +
                 (b.fenced ? "true" : "false") + ",\"shutting_down\":" + (b.in_controlled_shutdown ? "true" : "false") +
                 ",\"rack\":" + json_string(b.rack) + ",\"endpoints\":[" + endpoints + "]}";
    }
    HttpResponse r;
    r.body = "{\"node_id\":" + num(options_.node_id) + ",\"cluster_id\":" + json_string(options_.cluster_id) +
             ",\"controller_id\":" + num(publisher_->leader()) + ",\"metadata_offset\":" + num(image->offset()) +
             ",\"topics\":" + num(static_cast<int64_t>(image->topics().size())) + ",\"brokers\":[" + brokers + "]}";
    return r;
  }
  if (req.path == "/api/topics" && req.method == "GET") {
    std::map<std::pair<std::string, int32_t>, std::shared_ptr<Partition>> local;
    {
      std::lock_guard<std::mutex> l(partitions_mu_);
      for (const auto& [tp, part] : partitions_) local[{tp.topic, tp.partition}] = part;
    }
    std::string topics;
    for (const auto& [id, t] : image->topics()) {
      std::string parts;
      for (const auto& [p, st] : t->partitions) {
        auto list = [](const std::vector<int32_t>& v) {
          std::string s;
          for (int32_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
          return "[" + s + "]";
        };
        std::string here = "null";
        if (auto it = local.find({t->name, p}); it != local.end()) {
          const auto log = it->second->log();
          here = "{\"log_start\":" + num(log->log_start_offset()) + ",\"log_end\":" + num(log->log_end_offset()) +
                 ",\"high_watermark\":" + num(it->second->high_watermark()) + ",\"size_bytes\":" +
                 num(static_cast<int64_t>(log->size_bytes())) + "}";
        }
        parts += std::string(parts.empty() ? "" : ",") + "{\"partition\":" + num(p) + ",\"leader\":" + num(st.leader) +
                 ",\"replicas\":" + list(st.replicas) + ",\"isr\":" + list(st.isr) + ",\"here\":" + here + "}";
      }
      topics += std::string(topics.empty() ? "" : ",") + "{\"name\":" + json_string(t->name) + ",\"partitions\":[" +
                parts + "]}";
    }
    HttpResponse r;
    r.body = "{\"node_id\":" + num(options_.node_id) + ",\"topics\":[" + topics + "]}";
    return r;
  }
  if (req.path == "/api/topics" && req.method == "POST") {
    cv1::CreateTopicsRequest creq;
    auto* t = creq.add_topics();
    t->set_name(req.param("name"));
    t->set_num_partitions(std::atoi(req.param("partitions").c_str()));
    t->set_replication_factor(std::atoi(req.param("replication_factor").c_str()));
    if (authorizer_enabled()) return error("403 Forbidden", "with ACLs on, create topics with an authenticated client");
    cv1::CreateTopicsResponse cresp;
    create_topics(creq, &cresp);
    ErrorCode e = cresp.error_code();
    std::string message = cresp.error_message();
    if (e == gannet::v1::NONE && cresp.topics_size() == 1) {
      e = cresp.topics(0).error_code();
      message = cresp.topics(0).error_message();
    }
    HttpResponse r;
    if (e != gannet::v1::NONE) r.status = "400 Bad Request";
    r.body = "{\"error_code\":" + json_string(gannet::v1::ErrorCode_Name(e)) + ",\"error_message\":" +
             json_string(message) + "}";
    return r;
  }
  if (req.path == "/api/records" && req.method == "GET") {
    if (authorizer_enabled()) return error("403 Forbidden", "with ACLs on, read records with an authenticated client");
    v1::FetchRecordsRequest freq;
    freq.set_topic(req.param("topic"));
    freq.set_partition(std::atoi(req.param("partition").c_str()));
    freq.set_offset(std::atoll(req.param("offset").c_str()));
    // The leader's gRPC stub, for what only a partition's leader answers.
    auto leader_stub = [&](int32_t leader) -> std::unique_ptr<v1::Broker::Stub> {
      if (leader < 0 || leader == options_.node_id) return nullptr;
      auto it = image->brokers().find(leader);
      if (it == image->brokers().end()) return nullptr;
      for (const auto& e : it->second.endpoints) {
        if (e.name == options_.listener_name) {
          return v1::Broker::NewStub(
              grpc::CreateChannel(e.host + ":" + num(e.port), channel_credentials(options_.grpc_tls)));
        }
      }
      return nullptr;
    };
    if (const std::string time = req.param("time"); !time.empty()) {
      // From a time: the first record at or after it (ListOffsets by timestamp, on the leader).
      v1::ListOffsetsRequest lreq;
      auto* pd = lreq.add_partitions();
      pd->set_topic(freq.topic());
      pd->set_partition(freq.partition());
      pd->set_timestamp(std::max<int64_t>(0, std::atoll(time.c_str())));
      pd->set_current_leader_epoch(-1);
      v1::ListOffsetsResponse lresp;
      list_offsets(lreq, &lresp);
      if (lresp.partitions_size() == 1 && lresp.partitions(0).error_code() == gannet::v1::NOT_LEADER_OR_FOLLOWER) {
        if (auto stub = leader_stub(lresp.partitions(0).leader_id())) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
          v1::ListOffsetsResponse remote;
          if (stub->ListOffsets(&ctx, lreq, &remote).ok()) lresp = std::move(remote);
        }
      }
      if (lresp.partitions_size() != 1 || lresp.partitions(0).error_code() != gannet::v1::NONE) {
        return error("400 Bad Request", lresp.partitions_size() == 1
                                            ? gannet::v1::ErrorCode_Name(lresp.partitions(0).error_code()) + " " +
                                                  lresp.partitions(0).error_message()
                                            : "no answer for the partition");
      }
      // No record at or after the time: start at the end (the high watermark: nothing to show).
      int64_t from = lresp.partitions(0).offset();
      if (from < 0) {
        pd->set_timestamp(-1);
        v1::ListOffsetsResponse latest;
        list_offsets(lreq, &latest);
        if (latest.partitions_size() == 1 && latest.partitions(0).error_code() == gannet::v1::NOT_LEADER_OR_FOLLOWER) {
          if (auto stub = leader_stub(latest.partitions(0).leader_id())) {
            grpc::ClientContext ctx;
            ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
            v1::ListOffsetsResponse remote;
            if (stub->ListOffsets(&ctx, lreq, &remote).ok()) latest = std::move(remote);
          }
        }
        from = latest.partitions_size() == 1 ? std::max<int64_t>(0, latest.partitions(0).offset()) : 0;
      }
      freq.set_offset(from);
    }
    const int max = std::atoi(req.param("max").c_str());
    freq.set_max_records(max > 0 && max <= 500 ? max : 50);
    freq.set_max_bytes(1 << 20);
    v1::FetchRequest core = fetch_request_for(freq);
    v1::FetchResponse core_resp;
    std::promise<void> done;
    auto call = fetch(&core, &core_resp, nullptr, [&done] { done.set_value(); });
    if (done.get_future().wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      if (call) call->cancel();
      return error("504 Gateway Timeout", "the read did not finish");
    }
    v1::FetchRecordsResponse fresp;
    decode_fetched_records(freq, core_resp, &fresp);
    if (fresp.error_code() == gannet::v1::NOT_LEADER_OR_FOLLOWER) {
      // Consumers read from leaders: ask the partition's leader over its gRPC listener.
      if (auto stub = leader_stub(fresp.leader_id())) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::FetchRecordsResponse remote;
        if (stub->FetchRecords(&ctx, freq, &remote).ok()) fresp = std::move(remote);
      }
    }
    std::string records;
    for (const auto& rec : fresp.records()) {
      std::string headers;
      for (const auto& h : rec.headers()) {
        headers += std::string(headers.empty() ? "" : ",") + "{\"key\":" + json_string(h.key()) + ",\"value\":" + shown(h.value()) + "}";
      }
      records += std::string(records.empty() ? "" : ",") + "{\"offset\":" + num(rec.offset()) + ",\"timestamp\":" +
                 num(rec.timestamp()) + ",\"key\":" + (rec.has_key() ? shown(rec.key()) : "null") + ",\"value\":" +
                 (rec.has_value() ? shown(rec.value()) : "null") + ",\"headers\":[" + headers + "]}";
    }
    HttpResponse r;
    if (fresp.error_code() != gannet::v1::NONE) r.status = "400 Bad Request";
    r.body = "{\"error_code\":" + json_string(gannet::v1::ErrorCode_Name(fresp.error_code())) + ",\"error_message\":" +
             json_string(fresp.error_message()) + ",\"from_offset\":" + num(freq.offset()) +
             ",\"high_watermark\":" + num(fresp.high_watermark()) +
             ",\"log_start_offset\":" + num(fresp.log_start_offset()) + ",\"next_offset\":" + num(fresp.next_offset()) +
             ",\"records\":[" + records + "]}";
    return r;
  }
  if (req.path == "/api/groups" && req.method == "GET") {
    std::map<std::string, std::string> by_group;
    for (const GroupOffset& g : group_offsets(10'000)) {
      std::string& s = by_group[g.group];
      s += std::string(s.empty() ? "" : ",") + "{\"topic\":" + json_string(g.topic) + ",\"partition\":" + num(g.partition) +
           ",\"committed\":" + num(g.committed) + ",\"end\":" + num(g.end) + ",\"lag\":" +
           (g.end < 0 ? std::string("null") : num(std::max<int64_t>(0, g.end - g.committed))) + "}";
    }
    std::string groups;
    if (groups_) {
      v1::ListGroupsResponse lg;
      groups_->list_groups(v1::ListGroupsRequest(), &lg);
      for (const auto& g : lg.groups()) by_group.try_emplace(g.group_id());
    }
    for (const auto& [g, offsets] : by_group) {
      std::string members;
      if (groups_) {
        v1::DescribeGroupsRequest dreq;
        dreq.add_group_ids(g);
        v1::DescribeGroupsResponse dresp;
        groups_->describe_groups(dreq, &dresp);
        for (const auto& d : dresp.groups()) {
          for (const auto& m : d.members()) {
            members += std::string(members.empty() ? "" : ",") + "{\"member_id\":" + json_string(m.member_id()) +
                       ",\"client_id\":" + json_string(m.client_id()) + ",\"host\":" + json_string(m.client_host()) + "}";
          }
        }
      }
      groups += std::string(groups.empty() ? "" : ",") + "{\"group\":" + json_string(g) + ",\"members\":[" + members +
                "],\"offsets\":[" + offsets + "]}";
    }
    HttpResponse r;
    r.body = "{\"node_id\":" + num(options_.node_id) + ",\"groups\":[" + groups + "]}";
    return r;
  }
  return error("404 Not Found", "not found: " + req.method + " " + req.path + " (try GET / or GET /metrics)");
}

}  // namespace gannet::broker
