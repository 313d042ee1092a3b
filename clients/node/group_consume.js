// Consume from Node as a member of a consumer group whose partitions the broker assigns (KIP-848):
// heartbeat, read what is assigned, commit with the member epoch; partitions the coordinator
// leaves out are committed and given up (said in the next heartbeat).
//
//   node group_consume.js BOOTSTRAP GROUP TOPIC[,TOPIC...] [--count N]
//
// Prints "owns TOPIC:P ..." when its partitions change and "PARTITION OFFSET KEY VALUE" per
// record; after N records (0: never) it commits and leaves.
const { broker, call } = require('./gannet');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const [bootstrap, group, topicList, flag, n] = process.argv.slice(2);
const topics = topicList.split(',');
const count = flag === '--count' ? Number(n) : 0;
const stubs = new Map();
const stub = (address) => stubs.get(address) || stubs.set(address, broker(address)).get(address);
const boot = stub(bootstrap.split(',')[0]);
let coord = null;
let memberId = '';
let epoch = 0;
let nextBeat = 0;
const positions = new Map(); // "topic:partition" -> next offset (a decimal string)
const leaders = new Map(); // "topic:partition" -> "host:port"

async function coordinator() {
  while (!coord) {
    const r = await call(boot, 'FindCoordinator', { key: group });
    if (r.error_code === 'NONE') coord = stub(`${r.host}:${r.port}`);
    else await sleep(100);
  }
  return coord;
}

const split = (key) => [key.slice(0, key.lastIndexOf(':')), Number(key.slice(key.lastIndexOf(':') + 1))];
function byTopic(keys) {
  const m = new Map();
  for (const k of keys) {
    const [t, p] = split(k);
    m.set(t, [...(m.get(t) || []), p]);
  }
  return [...m.entries()].map(([topic, partitions]) => ({ topic, partitions }));
}

async function commit(keys) {
  for (let attempt = 0; keys.length && memberId && attempt < 50; attempt++) {
    const r = await call(await coordinator(), 'OffsetCommit', {
      group_id: group, member_id: memberId, generation_id: epoch,
      topics: byTopic(keys).map((t) => ({
        name: t.topic, partitions: t.partitions.map((p) => ({ partition: p, committed_offset: positions.get(`${t.topic}:${p}`) })),
      })),
    });
    const errors = new Set(r.topics.flatMap((t) => t.partitions.map((p) => p.error_code)));
    if ([...errors].every((e) => e === 'NONE')) return;
    if (!errors.has('STALE_MEMBER_EPOCH')) throw new Error(`commit: ${[...errors].join(',')}`);
    await heartbeat(); // the epoch moved: learn it, commit again
  }
}

async function heartbeat() {
  const r = await call(await coordinator(), 'ConsumerGroupHeartbeat', {
    group_id: group, member_id: memberId, member_epoch: epoch, client_id: 'node',
    subscribed_topic_names: topics, owned: { topics: byTopic([...positions.keys()]) },
  });
  if (r.error_code === 'UNKNOWN_MEMBER_ID' || r.error_code === 'FENCED_MEMBER_EPOCH') {
    positions.clear(); // no commit: they may be someone else's by now
    [memberId, epoch, nextBeat] = ['', 0, 0];
    return;
  }
  if (['NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS'].includes(r.error_code)) {
    coord = null;
    return;
  }
  if (r.error_code !== 'NONE') throw new Error(`heartbeat: ${r.error_code} ${r.error_message}`);
  [memberId, epoch, nextBeat] = [r.member_id, r.member_epoch, Date.now() + r.heartbeat_interval_ms];
  if (!r.assignment) return;
  const next = new Set(r.assignment.topics.flatMap((t) => t.partitions.map((p) => `${t.topic}:${p}`)));
  const gone = [...positions.keys()].filter((k) => !next.has(k));
  await commit(gone);
  gone.forEach((k) => positions.delete(k));
  const added = [...next].filter((k) => !positions.has(k));
  if (added.length) {
    const f = await call(await coordinator(), 'OffsetFetch', {
      group_id: group, topics: byTopic(added).map((t) => ({ name: t.topic, partitions: t.partitions })),
    });
    for (const k of added) positions.set(k, '0');
    for (const t of f.topics) {
      for (const p of t.partitions) if (BigInt(p.committed_offset) >= 0n) positions.set(`${t.name}:${p.partition}`, p.committed_offset);
    }
  }
  if (gone.length || added.length) {
    console.log(`owns ${[...positions.keys()].sort().join(' ')}`.trimEnd());
    nextBeat = 0; // say so at once
  }
}

async function leader(key) {
  if (!leaders.has(key)) {
    const md = await call(boot, 'Metadata', { topics });
    const brokers = new Map(md.brokers.map((b) => [b.broker_id, `${b.host}:${b.port}`]));
    for (const t of md.topics) for (const p of t.partitions) leaders.set(`${t.name}:${p.partition}`, brokers.get(p.leader));
  }
  return leaders.get(key);
}

async function main() {
  let read = 0;
  while (!count || read < count) {
    if (Date.now() >= nextBeat) await heartbeat();
    for (const key of [...positions.keys()]) {
      const [topic, partition] = split(key);
      const address = await leader(key);
      if (!address) continue;
      const r = await call(stub(address), 'FetchRecords', { topic, partition, offset: positions.get(key), max_wait_ms: 50 });
      if (r.error_code !== 'NONE') {
        leaders.clear();
        continue;
      }
      for (const rec of r.records) {
        const text = (b) => (b === null || b === undefined ? '-' : b.toString());
        console.log(`${rec.partition} ${rec.offset} ${text(rec.key)} ${text(rec.value)}`);
        read++;
      }
      if (positions.has(key)) positions.set(key, r.next_offset);
    }
    await commit([...positions.keys()]);
    if (!positions.size) await sleep(100);
  }
  await commit([...positions.keys()]);
  await call(await coordinator(), 'ConsumerGroupHeartbeat', { group_id: group, member_id: memberId, member_epoch: -1 });
}

main().then(() => process.exit(0), (e) => {
  console.error(e.message);
  process.exit(2);
});
