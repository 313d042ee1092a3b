// The web console's page: HTML, CSS and JavaScript in one string, served at / by every broker's
// metrics listener (broker/console.h). No framework and nothing fetched from elsewhere.
#include "broker/console.h"

namespace gannet::broker {

const std::string& console_page() {
  static const std::string page = R"PAGE(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gannet console</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b2733;background:#f5f7fa}
header{background:#1b2733;color:#fff;padding:10px 20px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:18px;margin:0}header a{color:#cfe3ff;text-decoration:none;margin-right:14px}
header a.on{color:#fff;font-weight:600;border-bottom:2px solid #6cb4ff}
main{padding:16px 20px}section{display:none}section.on{display:block}
table{border-collapse:collapse;background:#fff;margin:8px 0 16px;min-width:480px}
th,td{border:1px solid #d8dee6;padding:4px 10px;text-align:left;vertical-align:top}th{background:#eef2f6}
.ok{color:#137333}.bad{color:#b3261e}.muted{color:#6b7785}
.card{background:#fff;border:1px solid #d8dee6;padding:10px 14px;margin:8px 0 16px;display:inline-block;margin-right:12px}
.card b{font-size:20px;display:block}svg{background:#fff;border:1px solid #d8dee6}
form{margin:8px 0}input{margin-right:8px;padding:3px 6px}button{padding:3px 10px}
code{background:#eef2f6;padding:1px 4px}
</style></head><body>
<header><h1>Gannet</h1><span id="who" class="muted"></span>
<nav><a href="#overview">Overview</a><a href="#topics">Topics</a><a href="#records">Records</a><a href="#groups">Groups</a></nav></header>
<main>
<section id="overview"><div id="cards"></div><h3>Brokers</h3><table id="brokers"></table>
<h3>Records appended per second, by topic (partitions this broker leads)</h3><svg id="rate-chart" width="720" height="200"></svg><div id="rate-legend"></div></section>
<section id="topics"><h3>Create a topic</h3>
<form id="create"><input name="name" placeholder="name" required><input name="partitions" placeholder="partitions" size="8" value="3">
<input name="replication_factor" placeholder="replication factor" size="14" value="3"><button>Create</button> <span id="create-result"></span></form>
<h3>Topics</h3><table id="topic-table"></table></section>
<section id="records"><form id="browse"><input name="topic" placeholder="topic" required><input name="partition" placeholder="partition" size="8" value="0">
<input name="offset" placeholder="from offset" size="10" value="0"> or from <input name="time" type="datetime-local" step="1">
<input name="max" placeholder="max" size="6" value="50"><button>Read</button></form>
<div id="records-info" class="muted"></div><table id="record-table"></table></section>
<section id="groups"><h3>Consumer groups coordinated by this broker</h3><div id="group-list"></div>
<h3>Lag over the last minutes, by group (records)</h3><svg id="lag-chart" width="720" height="200"></svg><div id="lag-legend"></div></section>
</main>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s === null || s === undefined ? '' : s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function get(path) { const r = await fetch(path); return r.json(); }
function table(el, head, rows) {
  el.innerHTML = '<tr>' + head.map((h) => '<th>' + esc(h) + '</th>').join('') + '</tr>' +
    rows.map((r) => '<tr>' + r.map((c) => '<td>' + c + '</td>').join('') + '</tr>').join('');
}
const colors = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#17becf'];
function chart(svg, legend, series) {
  const w = +svg.getAttribute('width'), h = +svg.getAttribute('height'), names = Object.keys(series);
  let max = 1, n = 1;
  for (const k of names) for (const v of series[k]) { max = Math.max(max, v); }
  for (const k of names) n = Math.max(n, series[k].length);
  let out = '<line x1="40" y1="' + (h - 20) + '" x2="' + w + '" y2="' + (h - 20) + '" stroke="#ccc"/>' +
    '<text x="2" y="14" font-size="11">' + max.toFixed(max < 10 ? 1 : 0) + '</text><text x="2" y="' + (h - 22) + '" font-size="11">0</text>';
  names.forEach((k, i) => {
    const pts = series[k].map((v, j) => (40 + (w - 45) * j / Math.max(1, n - 1)).toFixed(1) + ',' + (h - 20 - (h - 30) * v / max).toFixed(1));
    out += '<polyline fill="none" stroke-width="2" stroke="' + colors[i % colors.length] + '" points="' + pts.join(' ') + '"/>';
  });
  svg.innerHTML = out;
  legend.innerHTML = names.map((k, i) => '<span style="color:' + colors[i % colors.length] + '">&#9632; ' + esc(k) + '</span>').join(' &nbsp; ') || '<span class="muted">no data yet</span>';
}
// Charts: /metrics polled every 2 s, the last 150 points (5 minutes) kept here.
const rates = {}, lags = {}, last = {};
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^(\w+)\{([^}]*)\} (\S+)$/);
    if (!m) continue;
    const labels = {};
    for (const kv of m[2].matchAll(/(\w+)="([^"]*)"/g)) labels[kv[1]] = kv[2];
    out.push({name: m[1], labels, value: +m[3]});
  }
  return out;
}
function push(series, key, v) { (series[key] = series[key] || []).push(v); if (series[key].length > 150) series[key].shift(); }
async function poll() {
  try {
    const text = await (await fetch('/metrics')).text();
    const now = Date.now(), lagSum = {};
    for (const s of parseMetrics(text)) {
      if (s.name === 'gannet_topic_records_in_total') {
        const k = s.labels.topic, prev = last[k];
        last[k] = {t: now, v: s.value};
        if (prev) push(rates, k, Math.max(0, (s.value - prev.v) / ((now - prev.t) / 1000)));
      } else if (s.name === 'gannet_consumer_group_lag') {
        lagSum[s.labels.group] = (lagSum[s.labels.group] || 0) + s.value;
      }
    }
    for (const g of Object.keys(lagSum)) push(lags, g, lagSum[g]);
    chart($('rate-chart'), $('rate-legend'), rates);
    chart($('lag-chart'), $('lag-legend'), lags);
  } catch (e) {}
}
async function overview() {
  const o = await get('/api/overview');
  $('who').textContent = 'broker ' + o.node_id + ' of cluster ' + o.cluster_id;
  $('cards').innerHTML = [['Brokers', o.brokers.length], ['Unfenced', o.brokers.filter((b) => !b.fenced).length],
    ['Active controller', o.controller_id], ['Topics', o.topics], ['Metadata offset', o.metadata_offset]]
    .map((c) => '<div class="card"><span class="muted">' + c[0] + '</span><b>' + esc(c[1]) + '</b></div>').join('');
  table($('brokers'), ['Broker', 'Endpoints', 'Rack', 'Status'], o.brokers.map((b) => [
    esc(b.id) + (b.id === o.node_id ? ' <span class="muted">(this one)</span>' : ''), b.endpoints.map(esc).join('<br>'), esc(b.rack),
    b.fenced ? '<span class="bad">fenced</span>' : (b.shutting_down ? '<span class="bad">shutting down</span>' : '<span class="ok">unfenced</span>')]));
}
async function topics() {
  const t = await get('/api/topics');
  // By name, the internal ones (__consumer_offsets) last.
  t.topics.sort((a, b) => (a.name.startsWith('__') - b.name.startsWith('__')) || a.name.localeCompare(b.name));
  const rows = [];
  for (const topic of t.topics) for (const p of topic.partitions) {
    const h = p.here, full = p.isr.length === p.replicas.length;
    rows.push(['<a href="#records" data-topic="' + esc(topic.name) + '" data-partition="' + p.partition + '">' + esc(topic.name) + '</a>', p.partition,
      p.leader < 0 ? '<span class="bad">none</span>' : p.leader, esc(p.replicas.join(',')),
      '<span class="' + (full ? 'ok' : 'bad') + '">' + esc(p.isr.join(',')) + '</span>',
      h ? h.log_start : '', h ? h.high_watermark : '', h ? h.log_end : '', h ? (h.size_bytes / 1024).toFixed(1) + ' KiB' : '<span class="muted">not here</span>']);
  }
  table($('topic-table'), ['Topic', 'Partition', 'Leader', 'Replicas', 'ISR', 'Log start', 'High watermark', 'Log end', 'Size here'], rows);
  for (const a of document.querySelectorAll('#topic-table a')) a.onclick = () => {
    const f = $('browse'); f.topic.value = a.dataset.topic; f.partition.value = a.dataset.partition; f.offset.value = 0; setTimeout(records, 0);
  };
}
async function records() {
  const f = $('browse');
  if (!f.topic.value) { $('records-info').textContent = 'Pick a topic on the Topics page, or type one.'; return; }
  const q = new URLSearchParams({topic: f.topic.value, partition: f.partition.value, offset: f.offset.value, max: f.max.value});
  if (f.time.value) q.set('time', String(Date.parse(f.time.value)));
  const r = await get('/api/records?' + q);
  $('records-info').innerHTML = esc(f.topic.value) + '-' + esc(f.partition.value) + ': ' +
    (r.error_code && r.error_code !== 'NONE' ? '<span class="bad">' + esc(r.error_code) + ' ' + esc(r.error_message) + '</span>'
      : r.records.length + ' record(s) from offset ' + esc(r.from_offset) + (f.time.value ? ' (the first at or after ' + esc(f.time.value) + ')' : '') +
        '; log start ' + r.log_start_offset + ', high watermark ' + r.high_watermark);
  table($('record-table'), ['Offset', 'Timestamp', 'Key', 'Value', 'Headers'], (r.records || []).map((x) => [x.offset,
    esc(new Date(x.timestamp).toISOString()), x.key === null ? '<span class="muted">null</span>' : '<code>' + esc(x.key) + '</code>',
    x.value === null ? '<span class="muted">null</span>' : esc(x.value), x.headers.map((h) => esc(h.key) + '=' + esc(h.value)).join('<br>')]));
}
async function groups() {
  const g = await get('/api/groups');
  $('group-list').innerHTML = g.groups.length ? '' : '<p class="muted">No group is coordinated by this broker.</p>';
  for (const grp of g.groups) {
    const div = document.createElement('div');
    div.innerHTML = '<h4>' + esc(grp.group) + ' <span class="muted">(' + grp.members.length + ' member(s))</span></h4><table></table><table></table>';
    table(div.querySelectorAll('table')[0], ['Member', 'Client', 'Host'], grp.members.map((m) => [esc(m.member_id), esc(m.client_id), esc(m.host)]));
    table(div.querySelectorAll('table')[1], ['Topic', 'Partition', 'Committed', 'Log end (HW)', 'Lag'], grp.offsets.map((o) => [esc(o.topic), o.partition, o.committed,
      o.end < 0 ? '<span class="muted">not here</span>' : o.end, o.lag === null ? '' : '<b>' + o.lag + '</b>']));
    $('group-list').appendChild(div);
  }
}
const pages = {overview, topics, records, groups};
function show() {
  const page = (location.hash || '#overview').slice(1).split('?')[0];
  for (const s of document.querySelectorAll('section')) s.classList.toggle('on', s.id === page);
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.getAttribute('href') === '#' + page);
  const params = new URLSearchParams((location.hash.split('?')[1]) || '');
  if (page === 'records') for (const k of ['topic', 'partition', 'offset']) if (params.get(k)) $('browse')[k].value = params.get(k);
  (pages[page] || overview)();
}
$('create').onsubmit = async (e) => {
  e.preventDefault();
  const body = new URLSearchParams(new FormData($('create')));
  const r = await (await fetch('/api/topics', {method: 'POST', body})).json();
  $('create-result').innerHTML = r.error_code === 'NONE' ? '<span class="ok">created</span>' : '<span class="bad">' + esc(r.error_code) + ': ' + esc(r.error_message) + '</span>';
  topics();
};
$('browse').onsubmit = (e) => { e.preventDefault(); records(); };
window.onhashchange = show;
show(); poll(); overview();
setInterval(poll, 2000);
setInterval(() => { const p = (location.hash || '#overview').slice(1).split('?')[0]; if (p !== 'records') (pages[p] || overview)(); }, 5000);
</script></body></html>
)PAGE";
  return page;
}

}  // namespace gannet::broker
