// The web console (issue 20): a page of HTML and JavaScript served by every broker on its
// metrics.http.listener (no build step, nothing fetched from the internet), and the JSON it reads:
//   GET  /                      the page (#overview, #topics, #records, #groups)
//   GET  /api/overview          this broker, the controller, every registered broker
//   GET  /api/topics            topics and partitions (leader, replicas, ISR; offsets and sizes of
//                               the replicas hosted here)
//   GET  /api/records?topic=T&partition=P&offset=O|time=MS&max=N   a partition's records (read
//                               from its leader, over gRPC when that is another broker)
//   GET  /api/groups            the groups this broker coordinates, committed offsets and lag
//   POST /api/topics            create a topic (form fields name, partitions, replication_factor)
// Charts (records appended per topic, group lag) are drawn from /metrics, polled by the page.
#pragma once

#include <string>

namespace gannet::broker {

struct HttpRequest {
  std::string method, path, query, body;
  // The value of `key` in the query string or a form body ("" when absent), percent-decoded.
  std::string param(const std::string& key) const;
};

struct HttpResponse {
  std::string status = "200 OK";
  std::string type = "application/json";
  std::string body;
};

const std::string& console_page();

// JSON string literal for `s` (quotes included).
std::string json_string(const std::string& s);

}  // namespace gannet::broker
