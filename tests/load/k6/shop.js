// The Merch Shop load profiles for k6 (open model: constant-arrival-rate,
// so a slow system gets more requests in flight, never fewer requests).
//
//   PROFILE=mixed  70% GET /api/info, 15% GET /api/buy/{cheap item},
//                  15% POST /api/sendCoin (1 coin to another random user)
//   PROFILE=info   GET /api/info only
//   PROFILE=auth   POST /api/auth: existing users logging in again
//
// Every request picks a random user of USERS_FILE (written by the seeding
// command: username, password, token per line). The SLI is in the
// thresholds: p99 <= P99_MS (50 ms) and at least SUCCESS (99.99%) of the
// requests successful. A request succeeds when it answers 200: the profile
// only sends valid requests (cheap items and 1-coin transfers from users who
// start with 1000 coins), so any other answer (a 4xx included) or a
// transport error is a failure. Iterations k6 could not start on time
// (dropped_iterations: no free VU) count as failures too, since in an open
// model they are requests the system did not take.
//
// Settings (environment): BASE_URL (loopback only), PROFILE, RATE (requests
// per second, all kinds together), DURATION (e.g. 60s), USERS_FILE,
// MAX_VUS, P99_MS, SUCCESS.
import http from 'k6/http';
import { Counter, Rate } from 'k6/metrics';
import { SharedArray } from 'k6/data';
import exec from 'k6/execution';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
if (!/^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(BASE)) {
  throw new Error(`BASE_URL ${BASE}: only loopback targets are allowed`);
}
const PROFILE = __ENV.PROFILE || 'mixed';
const RATE = parseInt(__ENV.RATE || '1000', 10);
const DURATION = __ENV.DURATION || '60s';
const MAX_VUS = parseInt(__ENV.MAX_VUS || '2000', 10);
const P99_MS = parseFloat(__ENV.P99_MS || '50');
const SUCCESS = parseFloat(__ENV.SUCCESS || '0.9999');
const CHEAP = ['pen', 'socks'];

const users = new SharedArray('users', () => {
  const path = __ENV.USERS_FILE;
  if (!path) throw new Error('USERS_FILE is required (make load-seed writes it)');
  const out = [];
  for (const line of open(path).split('\n')) {
    if (line === '') continue;
    const [name, password, token] = line.split('\t');
    out.push({ name, password, token });
  }
  if (out.length < 2) throw new Error(`${path}: fewer than 2 users`);
  return out;
});

// ok: requests answered 200; failures of any kind go to failed_requests by
// endpoint for the report.
const ok = new Rate('ok');
const failedRequests = new Counter('failed_requests');

function scenario(exec, share) {
  const rate = Math.max(1, Math.round(RATE * share));
  // A VU is busy for one request's latency: rate * 50 ms is the steady
  // need. Pre-allocate for a quarter-second stall (GC, a checkpoint): a VU
  // created during the run takes long enough to start that k6 drops
  // iterations meanwhile, which would count against the system.
  const pre = Math.min(MAX_VUS, Math.max(50, Math.ceil(rate * 0.25)));
  return {
    executor: 'constant-arrival-rate',
    exec,
    rate,
    timeUnit: '1s',
    duration: DURATION,
    preAllocatedVUs: pre,
    maxVUs: Math.max(pre, Math.ceil(MAX_VUS * share)),
    gracefulStop: '5s',
  };
}

const profiles = {
  mixed: { info: scenario('info', 0.70), buy: scenario('buy', 0.15), send: scenario('send', 0.15) },
  info: { info: scenario('info', 1) },
  auth: { auth: scenario('auth', 1) },
};
if (!profiles[PROFILE]) throw new Error(`PROFILE ${PROFILE}: want mixed, info or auth`);

// Per-endpoint latency is reported (a threshold that always holds makes k6
// keep the tagged sub-metric); the SLI is on all requests together.
const perEndpoint = {};
for (const name of Object.keys(profiles[PROFILE])) perEndpoint[`http_req_duration{name:${name}}`] = ['p(99)>=0'];

export const options = {
  scenarios: profiles[PROFILE],
  discardResponseBodies: false,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
  thresholds: {
    http_req_duration: [`p(99)<=${P99_MS}`],
    ok: [`rate>=${SUCCESS}`],
    // Dropped iterations are requests not sent on time: allowed only within
    // the failure budget.
    dropped_iterations: [`count<=${Math.floor(RATE * parseDuration(DURATION) * (1 - SUCCESS))}`],
    ...perEndpoint,
  },
  userAgent: 'merchshop-load/1 (k6)',
};

function parseDuration(d) {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d);
  if (!m) throw new Error(`DURATION ${d}: want e.g. 60s`);
  const n = parseInt(m[1], 10);
  return { ms: n / 1000, s: n, m: n * 60, h: n * 3600 }[m[2]];
}

function pick() {
  return users[Math.floor(Math.random() * users.length)];
}

const params = (u, name) => ({
  headers: { Authorization: `Bearer ${u.token}`, 'Content-Type': 'application/json' },
  tags: { name },
  timeout: '10s',
});

function record(res, name) {
  const good = res.status === 200;
  ok.add(good, { name });
  if (!good) {
    failedRequests.add(1, { name, status: String(res.status) });
    if (__ENV.LOG_FAILURES) console.warn(`${name}: ${res.status} ${res.error || ''} ${String(res.body).slice(0, 200)}`);
  }
}

export function info() {
  const u = pick();
  record(http.get(`${BASE}/api/info`, params(u, 'info')), 'info');
}

export function buy() {
  const u = pick();
  const item = CHEAP[Math.floor(Math.random() * CHEAP.length)];
  record(http.get(`${BASE}/api/buy/${item}`, params(u, 'buy')), 'buy');
}

export function send() {
  const from = pick();
  let to = pick();
  while (to.name === from.name) to = pick();
  const body = JSON.stringify({ toUser: to.name, amount: 1 });
  record(http.post(`${BASE}/api/sendCoin`, body, params(from, 'send')), 'send');
}

export function auth() {
  const u = pick();
  const body = JSON.stringify({ username: u.name, password: u.password });
  record(http.post(`${BASE}/api/auth`, body, { headers: { 'Content-Type': 'application/json' }, tags: { name: 'auth' }, timeout: '10s' }), 'auth');
}
