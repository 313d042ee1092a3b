// Read a topic's records as messages from Node, every partition from its leader, from the
// beginning up to the high watermark.
//
//   node consume.js BOOTSTRAP TOPIC
//
// Prints "PARTITION OFFSET KEY VALUE" per record.
const { broker, call } = require('./gannet');

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  const md = await call(broker(bootstrap.split(',')[0]), 'Metadata', { topics: [topic] });
  const brokers = new Map(md.brokers.map((b) => [b.broker_id, `${b.host}:${b.port}`]));
  const t = md.topics.find((x) => x.name === topic);
  if (!t || t.error_code !== 'NONE') {
    console.log(`error ${t ? t.error_code : 'UNKNOWN_TOPIC_OR_PARTITION'} ${topic}`);
    process.exit(1);
  }
  for (const p of [...t.partitions].sort((a, b) => a.partition - b.partition)) {
    const stub = broker(brokers.get(p.leader));
    let offset = '0';
    for (;;) {
      const resp = await call(stub, 'FetchRecords', { topic, partition: p.partition, offset, max_wait_ms: 100 });
      if (resp.error_code !== 'NONE') {
        console.log(`error ${resp.error_code} ${resp.error_message}`);
        process.exit(1);
      }
      for (const r of resp.records) {
        const key = r.key === null || r.key === undefined ? '-' : r.key.toString();
        const value = r.value === null || r.value === undefined ? '-' : r.value.toString();
        console.log(`${r.partition} ${r.offset} ${key} ${value}`);
      }
      offset = resp.next_offset;
      if (BigInt(offset) >= BigInt(resp.high_watermark)) break;
    }
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(2);
});
