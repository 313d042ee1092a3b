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

namespace gannet::tools {

// gannet group list | describe G | reset-offsets G | delete G (tools/group_commands.cc)
int group_list_command(const Args& a);
int group_describe_command(const Args& a);
int group_reset_offsets_command(const Args& a);
int group_delete_command(const Args& a);

}  // namespace gannet::tools
