// Produce records as messages from Node: the broker partitions (as a Kafka producer would),
// batches and appends them. Reads KEY:VALUE lines from stdin.
//
//   node produce.js BOOTSTRAP TOPIC
//
// Prints "PARTITION OFFSET KEY" per record, or "error NAME message".
const { broker, call } = require('./gannet');

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const records = input.split('\n').filter((l) => l).map((l) => {
    const i = l.indexOf(':');
    return { key: Buffer.from(l.slice(0, i)), value: Buffer.from(l.slice(i + 1)) };
  });
  const stub = broker(bootstrap.split(',')[0]);
  const resp = await call(stub, 'ProduceRecords', { topic, records });
  if (resp.error_code !== 'NONE') {
    console.log(`error ${resp.error_code} ${resp.error_message}`);
    process.exit(1);
  }
  let failed = 0;
  resp.results.forEach((r, i) => {
    if (r.error_code !== 'NONE') {
      failed++;
      console.log(`error ${r.error_code} ${r.error_message}`);
    } else {
      console.log(`${r.partition} ${r.offset} ${records[i].key.toString()}`);
    }
  });
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(2);
});
