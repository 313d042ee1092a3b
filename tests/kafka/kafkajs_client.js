// kafkajs (npm) against Gannet's Kafka listener. Run by tests/kafka_client_test.cc with NODE_PATH
// naming the node_modules that scripts/install_deps.sh fills.
//
//   node kafkajs_client.js produce BOOTSTRAP TOPIC FROM N
//       acks=all idempotent producer of values vFROM..; prints "delivered N".
//   node kafkajs_client.js consume BOOTSTRAP TOPIC GROUP IDLE_S
//       a group member: prints "assigned p,p" after each join, "record P O VALUE" per record
//       (committed as it goes), and disconnects after IDLE_S seconds without records.
//
// The group uses an assignor named "range" (Kafka's range assignment, written here), so a group
// mixing kafkajs and the gannet CLI (whose consumer offers range, roundrobin and sticky) agrees on
// one protocol, whichever member leads.
'use strict';
const { Kafka, logLevel, AssignerProtocol } = require('kafkajs');

const [mode, bootstrap, topic, ...rest] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'kafkajs-test', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING });

function out(line) {
  process.stdout.write(line + '\n');
}

// Kafka's range assignment: per topic, members sorted by id, each a contiguous run of partitions.
const RangeAssigner = ({ cluster }) => ({
  name: 'range',
  version: 0,
  protocol({ topics }) {
    return { name: 'range', metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics }) };
  },
  async assign({ members, topics }) {
    const plan = {};
    for (const m of members) plan[m.memberId] = {};
    const sorted = members.map((m) => m.memberId).sort();
    for (const t of topics) {
      const partitions = cluster.findTopicPartitionMetadata(t).map((p) => p.partitionId).sort((a, b) => a - b);
      const per = Math.floor(partitions.length / sorted.length);
      const extra = partitions.length % sorted.length;
      let at = 0;
      sorted.forEach((id, i) => {
        const n = per + (i < extra ? 1 : 0);
        plan[id][t] = partitions.slice(at, at + n);
        at += n;
      });
    }
    return sorted.map((id) => ({
      memberId: id,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: plan[id], userData: Buffer.alloc(0) }),
    }));
  },
});

async function produce(first, n) {
  // Idempotent: kafkajs asks InitProducerId first and numbers its batches.
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = first; i < first + n; i++) messages.push({ key: 'k' + i, value: 'v' + i });
  for (let i = 0; i < messages.length; i += 100) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 100) });
  }
  await producer.disconnect();
  out('delivered ' + n);
}

async function consume(group, idleS) {
  const consumer = kafka.consumer({
    groupId: group,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    partitionAssigners: [RangeAssigner],
  });
  let last = Date.now();
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
    out('assigned ' + parts.join(','));
    last = Date.now();
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      out('record ' + partition + ' ' + message.offset + ' ' + message.value.toString());
      last = Date.now();
    },
  });
  while (Date.now() - last < idleS * 1000) await new Promise((r) => setTimeout(r, 200));
  await consumer.disconnect();
  out('closed');
}

(async () => {
  if (mode === 'produce') await produce(Number(rest[0]), Number(rest[1]));
  else if (mode === 'consume') await consume(rest[0], Number(rest[1]));
  else throw new Error('unknown mode ' + mode);
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
