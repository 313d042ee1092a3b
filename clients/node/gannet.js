// Gannet's gRPC API from Node with nothing of ours but the .proto files: @grpc/proto-loader reads
// them at run time (no code generation), @grpc/grpc-js calls the broker.
//
//   const { broker, errorName } = require('./gannet');
//   const stub = broker('127.0.0.1:9192');
//   stub.ProduceRecords({ topic: 'clicks', records: [{ key: Buffer.from('k'), value: Buffer.from('v') }] }, cb);
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const root = process.env.GANNET_PROTO_ROOT || path.resolve(__dirname, '..', '..');
const definition = protoLoader.loadSync(['proto/broker.proto'], {
  includeDirs: [root],
  keepCase: true,
  longs: String, // int64 fields as decimal strings
  enums: String, // error codes by name (UNKNOWN_TOPIC_OR_PARTITION)
  defaults: true,
});
const api = grpc.loadPackageDefinition(definition);

// A stub for one broker's gRPC listener; every method also has a promise form, e.g. call(stub, 'Metadata', {}).
// Plaintext, or, when the environment names a CA (GANNET_TLS_CA), TLS trusting it, with a client
// certificate (GANNET_TLS_CERT, GANNET_TLS_KEY: ACLs then apply to User:<its subject>) or a user
// and password on every call (GANNET_USER, GANNET_PASSWORD; taken only over TLS).
function credentials() {
  const env = process.env;
  if (!env.GANNET_TLS_CA) return grpc.credentials.createInsecure();
  const read = (name) => (env[name] ? fs.readFileSync(env[name]) : null);
  let creds = grpc.credentials.createSsl(read('GANNET_TLS_CA'), read('GANNET_TLS_KEY'), read('GANNET_TLS_CERT'));
  if (env.GANNET_USER) {
    const value = 'Basic ' + Buffer.from(`${env.GANNET_USER}:${env.GANNET_PASSWORD || ''}`).toString('base64');
    creds = grpc.credentials.combineChannelCredentials(
      creds,
      grpc.credentials.createFromMetadataGenerator((_params, callback) => {
        const md = new grpc.Metadata();
        md.add('authorization', value);
        callback(null, md);
      }),
    );
  }
  return creds;
}

function broker(address) {
  return new api.gannet.broker.v1.Broker(address, credentials());
}

function call(stub, method, request, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    stub[method](request, { deadline: Date.now() + timeoutMs }, (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

module.exports = { broker, call };
