// Topics from Node, through any broker (forwarded to the active controller).
//
//   node admin.js BOOTSTRAP create TOPIC PARTITIONS REPLICATION_FACTOR
//   node admin.js BOOTSTRAP list
const { broker, call } = require('./gannet');

async function main() {
  const [bootstrap, cmd, ...rest] = process.argv.slice(2);
  const stub = broker(bootstrap.split(',')[0]);
  if (cmd === 'create') {
    const [name, partitions, rf] = rest;
    const resp = await call(stub, 'CreateTopics', {
      topics: [{ name, num_partitions: Number(partitions), replication_factor: Number(rf) }],
      timeout_ms: 30000,
    });
    const failed = resp.topics.filter((t) => t.error_code !== 'NONE');
    if (resp.error_code !== 'NONE') failed.push(resp);
    for (const t of failed) console.log(`error ${t.error_code} ${t.error_message}`);
    if (!failed.length) console.log(`created ${name}`);
    process.exit(failed.length ? 1 : 0);
  } else if (cmd === 'list') {
    const md = await call(stub, 'Metadata', {});
    for (const t of md.topics) console.log(`${t.name} ${t.partitions.length}`);
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(2);
});
