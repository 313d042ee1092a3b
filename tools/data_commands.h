// The data commands of the gannet CLI: produce and consume lines, and the perf tools
// (tools/gannet.cc dispatches to them).
#pragma once

#include "tools/cli.h"

namespace gannet::tools {

int produce_command(const Args& a);        // gannet produce TOPIC
int consume_command(const Args& a);        // gannet consume TOPIC
int perf_produce_command(const Args& a);   // gannet perf produce TOPIC
int perf_consume_command(const Args& a);   // gannet perf consume TOPIC

}  // namespace gannet::tools
