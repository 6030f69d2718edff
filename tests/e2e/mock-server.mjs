// A stand-in gql_media server for frontend development and for checking the browser test
// itself while the real server is not available. It speaks the public API's names (a subset),
// polls the library folder for changes, and serves dist/ like the real server will.
//
//   node tests/e2e/mock-server.mjs <library dir> [port]     (needs frontend-example's node_modules)
//
// Not used by `make test`: the pytest wrapper runs the browser test against the real server.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const frontend = resolve(here, '../../frontend-example');
const require = createRequire(join(frontend, 'package.json'));
const { buildSchema } = require('graphql');
const { graphql } = require('graphql');
const { WebSocketServer } = require('ws');
const { useServer } = require('graphql-ws/use/ws');

const library = resolve(process.argv[2] ?? '.');
const port = Number(process.argv[3] ?? 8765);
const dist = join(frontend, 'dist');
const TOKEN = process.env.MOCK_TOKEN || null;
const VIDEO_EXT = new Set(['.mp4', '.mkv', '.webm', '.mov', '.avi', '.m4v', '.ts']);

const schema = buildSchema(`
  scalar DateTime
  scalar Long
  interface Node { id: ID! }
  type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
  type Folder implements Node {
    id: ID! name: String! path: String! rootPath: String! parent: Folder folders: [Folder!]!
    entries(first: Int, after: String): TreeEntryConnection!
    videoCount(recursive: Boolean! = false): Int!
    totalSize(recursive: Boolean! = true): Long!
    modifiedAt: DateTime
  }
  type Video implements Node {
    id: ID! name: String! path: String! rootPath: String! folder: Folder! size: Long!
    modifiedAt: DateTime! createdAt: DateTime! durationSeconds: Float width: Int height: Int
    videoCodec: String audioCodec: String container: String status: VideoStatus! error: String
    thumbnailUrl: String streamUrl: String!
  }
  enum VideoStatus { PENDING READY BROKEN }
  union TreeEntry = Folder | Video
  type TreeEntryEdge { cursor: String! node: TreeEntry! parentId: ID }
  type TreeEntryConnection { edges: [TreeEntryEdge!]! pageInfo: PageInfo! totalCount: Int! }
  type VideoEdge { cursor: String! node: Video! }
  type VideoConnection { edges: [VideoEdge!]! pageInfo: PageInfo! totalCount: Int! }
  enum VideoOrderField { NAME MODIFIED_AT SIZE DURATION }
  enum OrderDirection { ASC DESC }
  input VideoOrder { field: VideoOrderField! direction: OrderDirection! = ASC }
  input VideoFilter { nameContains: String underPath: String minDurationSeconds: Float maxDurationSeconds: Float status: VideoStatus }
  enum SyncMode { FULL INCREMENTAL }
  enum SyncTrigger { MANUAL WATCHER STARTUP }
  enum JobState { QUEUED RUNNING SUCCEEDED FAILED CANCELLED }
  enum SyncPhase { SCANNING DIFFING WRITING PROBING THUMBNAILS MERGING DONE }
  type SyncJob implements Node { id: ID! mode: SyncMode! trigger: SyncTrigger! paths: [String!]! state: JobState! startedAt: DateTime finishedAt: DateTime progress: SyncProgress! errors: [SyncError!]! }
  type SyncProgress { sequence: Long! jobId: ID! state: JobState! phase: SyncPhase! done: Int! total: Int currentPath: String added: Int! updated: Int! removed: Int! moved: Int! failed: Int! elapsedSeconds: Float! }
  type SyncError { path: String! message: String! }
  enum WatchMode { NATIVE POLLING }
  type WatcherStatus { enabled: Boolean! mode: WatchMode! error: String roots: [String!]! pendingPaths: Int! settleMs: Int! lastEventAt: DateTime lastSyncAt: DateTime }
  enum ChangeKind { ADDED UPDATED REMOVED MOVED RESYNC }
  type LibraryChange { sequence: Long! kind: ChangeKind! id: ID path: String oldPath: String rootPath: String entry: TreeEntry jobId: ID }
  type Query {
    node(id: ID!): Node
    roots: [Folder!]!
    videos(first: Int, after: String, filter: VideoFilter, orderBy: VideoOrder): VideoConnection!
    watcher: WatcherStatus!
    syncJobs(first: Int, after: String): [SyncJob!]!
    currentSync: SyncJob
  }
  type Mutation {
    syncLibrary(mode: SyncMode! = INCREMENTAL, path: String): SyncJob!
    cancelSync(id: ID!): SyncJob
    startWatcher: WatcherStatus!
    stopWatcher: WatcherStatus!
    regenerateThumbnail(id: ID!): Video!
  }
  type Subscription {
    syncProgress(jobId: ID): SyncProgress!
    libraryChanged(rootPath: String, underPath: String): LibraryChange!
    watcherStatus: WatcherStatus!
  }
`);

// ---------------------------------------------------------------- library state

const idOf = (kind, path) => Buffer.from(`${kind}:${path}`).toString('base64');
const now = () => new Date().toISOString();
/** path ("" for root) -> {kind, path, name, size, mtime} */
let entries = new Map();

function scan() {
  const out = new Map();
  out.set('', { kind: 'Folder', path: '', name: library.split(sep).pop(), mtime: statSync(library).mtimeMs });
  const walk = (dir) => {
    let names = [];
    try {
      names = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of names) {
      if (d.name.startsWith('.')) continue;
      const abs = join(dir, d.name);
      const rel = relative(library, abs).split(sep).join('/');
      let st;
      try {
        st = statSync(abs);
      } catch {
        continue;
      }
      if (d.isDirectory()) {
        out.set(rel, { kind: 'Folder', path: rel, name: d.name, mtime: st.mtimeMs });
        walk(abs);
      } else if (VIDEO_EXT.has(extname(d.name).toLowerCase())) {
        out.set(rel, { kind: 'Video', path: rel, name: d.name, size: st.size, mtime: st.mtimeMs, created: now() });
      }
    }
  };
  walk(library);
  return out;
}

const parentPath = (p) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : p === '' ? null : '');

function folderObj(e) {
  return {
    __typename: 'Folder',
    id: idOf('Folder', e.path),
    name: e.name,
    path: e.path,
    rootPath: library,
    modifiedAt: new Date(e.mtime).toISOString(),
    parent: () => {
      const pp = parentPath(e.path);
      return pp == null ? null : folderObj(entries.get(pp));
    },
    folders: () => children(e.path).filter((c) => c.kind === 'Folder').map(toObj),
    entries: ({ first = 100, after }) => connection(children(e.path).map(toObj), first, after),
    videoCount: ({ recursive }) => videosUnder(e.path, recursive).length,
    totalSize: ({ recursive }) => videosUnder(e.path, recursive).reduce((s, v) => s + v.size, 0),
  };
}

function videoObj(e) {
  const id = idOf('Video', e.path);
  return {
    __typename: 'Video',
    id,
    name: e.name,
    path: e.path,
    rootPath: library,
    folder: () => folderObj(entries.get(parentPath(e.path))),
    size: e.size,
    modifiedAt: new Date(e.mtime).toISOString(),
    createdAt: e.created,
    durationSeconds: 5,
    width: 320,
    height: 180,
    videoCodec: 'h264',
    audioCodec: null,
    container: extname(e.name).slice(1),
    status: 'READY',
    error: null,
    thumbnailUrl: `/thumbnails/${encodeURIComponent(id)}.svg`,
    streamUrl: `/media/${encodeURIComponent(id)}`,
  };
}

const toObj = (e) => (e.kind === 'Folder' ? folderObj(e) : videoObj(e));

function children(path) {
  const out = [...entries.values()].filter((e) => e.path !== '' && parentPath(e.path) === path);
  return out.sort((a, b) => (a.kind !== b.kind ? (a.kind === 'Folder' ? -1 : 1) : a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1));
}
function videosUnder(path, recursive) {
  return [...entries.values()].filter(
    (e) => e.kind === 'Video' && (recursive ? path === '' || e.path.startsWith(`${path}/`) : parentPath(e.path) === path),
  );
}
function connection(list, first, after) {
  const start = after ? Number(Buffer.from(after, 'base64').toString()) + 1 : 0;
  const slice = list.slice(start, start + (first ?? 100));
  const cur = (i) => Buffer.from(String(start + i)).toString('base64');
  return {
    edges: slice.map((node, i) => ({ cursor: cur(i), node, parentId: null })),
    pageInfo: { hasNextPage: start + slice.length < list.length, hasPreviousPage: start > 0, startCursor: slice.length ? cur(0) : null, endCursor: slice.length ? cur(slice.length - 1) : null },
    totalCount: list.length,
  };
}

// ---------------------------------------------------------------- pub/sub

const subscribers = new Set();
function publish(topic, payload) {
  for (const s of subscribers) if (s.topic === topic) s.push({ [topic]: payload });
}
function listen(topic) {
  const queue = [];
  let wake = null;
  const sub = { topic, push: (v) => (queue.push(v), wake?.()) };
  subscribers.add(sub);
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      while (!queue.length) await new Promise((r) => (wake = r));
      return { value: queue.shift(), done: false };
    },
    async return() {
      subscribers.delete(sub);
      return { value: undefined, done: true };
    },
  };
}

let changeSeq = 0;
function diffAndPublish(jobId = null) {
  const fresh = scan();
  const counts = { added: 0, removed: 0, updated: 0 };
  for (const [p, e] of entries)
    if (!fresh.has(p)) {
      counts.removed++;
      publish('libraryChanged', { sequence: ++changeSeq, kind: 'REMOVED', id: idOf(e.kind, p), path: p, oldPath: null, rootPath: library, entry: null, jobId });
    }
  const old = entries;
  entries = fresh;
  for (const [p, e] of fresh) {
    const o = old.get(p);
    if (!o || (e.kind === 'Video' && (o.size !== e.size || o.mtime !== e.mtime))) {
      if (o) e.created = o.created;
      counts[o ? 'updated' : 'added']++;
      publish('libraryChanged', { sequence: ++changeSeq, kind: o ? 'UPDATED' : 'ADDED', id: idOf(e.kind, p), path: p, oldPath: null, rootPath: library, entry: toObj(e), jobId });
    } else if (o.created) e.created = o.created;
  }
  if (counts.added + counts.removed + counts.updated) watcher.lastSyncAt = now();
  return counts;
}

// ---------------------------------------------------------------- watcher + jobs

const watcher = { enabled: true, mode: 'POLLING', error: null, roots: [library], pendingPaths: 0, settleMs: 300, lastEventAt: null, lastSyncAt: null };
let pollTimer = null;
function setWatcher(enabled) {
  watcher.enabled = enabled;
  clearInterval(pollTimer);
  if (enabled) pollTimer = setInterval(() => diffAndPublish(), 300);
  publish('watcherStatus', { ...watcher });
  return { ...watcher };
}

const jobs = [];
let jobSeq = 0;
function startJob(mode) {
  const running = jobs.find((j) => j.state === 'RUNNING' || j.state === 'QUEUED');
  if (running) return running;
  const t0 = Date.now();
  const job = { id: Buffer.from(`SyncJob:${++jobSeq}`).toString('base64'), mode, trigger: 'MANUAL', paths: [library], state: 'RUNNING', startedAt: now(), finishedAt: null, errors: [] };
  let seq = 0;
  const total = [...scan().values()].filter((e) => e.kind === 'Video').length;
  job.progress = { sequence: 0, jobId: job.id, state: 'RUNNING', phase: 'SCANNING', done: 0, total: null, currentPath: null, added: 0, updated: 0, removed: 0, moved: 0, failed: 0, elapsedSeconds: 0 };
  const emit = (patch) => {
    job.progress = { ...job.progress, ...patch, sequence: ++seq, state: job.state, elapsedSeconds: (Date.now() - t0) / 1000 };
    publish('syncProgress', job.progress);
  };
  jobs.unshift(job);
  const steps = [];
  steps.push(() => emit({ phase: 'SCANNING' }));
  steps.push(() => emit({ phase: 'DIFFING', total }));
  for (let i = 1; i <= total; i++) steps.push(() => emit({ phase: 'PROBING', done: i, total, currentPath: `video ${i}` }));
  steps.push(() => emit({ phase: 'WRITING', ...diffAndPublish(job.id) }));
  steps.push(() => {
    job.state = 'SUCCEEDED';
    job.finishedAt = now();
    emit({ phase: 'DONE', currentPath: null });
  });
  const tick = () => {
    if (job.state !== 'RUNNING') return;
    steps.shift()();
    if (steps.length) setTimeout(tick, Math.max(60, 1200 / (total + 4)));
  };
  setTimeout(tick, 50);
  return job;
}

// ---------------------------------------------------------------- root value

const allObjs = () => [...entries.values()].map(toObj);
const root = {
  node: ({ id }) => allObjs().find((o) => o.id === id) ?? null,
  roots: () => [folderObj(entries.get(''))],
  videos: ({ first = 100, after, filter }) => {
    let list = [...entries.values()].filter((e) => e.kind === 'Video');
    if (filter?.nameContains) list = list.filter((e) => e.name.toLowerCase().includes(filter.nameContains.toLowerCase()));
    list.sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1));
    return connection(list.map(videoObj), first, after);
  },
  watcher: () => ({ ...watcher }),
  syncJobs: ({ first = 10 }) => jobs.slice(0, first),
  currentSync: () => jobs.find((j) => j.state === 'RUNNING') ?? null,
  syncLibrary: ({ mode }) => startJob(mode),
  cancelSync: ({ id }) => {
    const j = jobs.find((x) => x.id === id);
    if (j && j.state === 'RUNNING') {
      j.state = 'CANCELLED';
      j.progress = { ...j.progress, state: 'CANCELLED', phase: 'DONE', sequence: j.progress.sequence + 1 };
      publish('syncProgress', j.progress);
    }
    return j ?? null;
  },
  startWatcher: () => setWatcher(true),
  stopWatcher: () => setWatcher(false),
  regenerateThumbnail: ({ id }) => allObjs().find((o) => o.id === id),
  syncProgress: () => listen('syncProgress'),
  libraryChanged: () => listen('libraryChanged'),
  watcherStatus: () => listen('watcherStatus'),
};

// ---------------------------------------------------------------- HTTP

const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.ttf': 'font/ttf', '.svg': 'image/svg+xml', '.json': 'application/json', '.mp4': 'video/mp4', '.webm': 'video/webm', '.mkv': 'video/x-matroska' };
const authorized = (h) => !TOKEN || h === `Bearer ${TOKEN}`;

function sendFile(res, file, req) {
  const st = statSync(file);
  const type = MIME[extname(file).toLowerCase()] ?? 'application/octet-stream';
  const m = /bytes=(\d*)-(\d*)/.exec(req.headers.range ?? '');
  if (m) {
    const start = m[1] ? Number(m[1]) : st.size - Number(m[2]);
    const end = m[1] && m[2] ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
    res.writeHead(206, { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Content-Range': `bytes ${start}-${end}/${st.size}`, 'Content-Length': end - start + 1 });
    createReadStream(file, { start, end }).pipe(res);
  } else {
    res.writeHead(200, { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Content-Length': st.size });
    createReadStream(file).pipe(res);
  }
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/graphql' && req.method === 'POST') {
    if (!authorized(req.headers.authorization)) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ errors: [{ message: 'Unauthorized' }] }));
    }
    let body = '';
    for await (const c of req) body += c;
    const { query, variables } = JSON.parse(body);
    const result = await graphql({ schema, source: query, rootValue: root, variableValues: variables });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify(result));
  }
  let m;
  if ((m = /^\/thumbnails\/(.+)\.svg$/.exec(url.pathname))) {
    const hue = parseInt(createHash('md5').update(m[1]).digest('hex').slice(0, 2), 16) * 1.4;
    res.writeHead(200, { 'Content-Type': 'image/svg+xml' });
    return res.end(`<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180"><rect width="320" height="180" fill="hsl(${hue},60%,45%)"/><circle cx="160" cy="90" r="40" fill="rgba(255,255,255,.6)"/></svg>`);
  }
  if ((m = /^\/media\/(.+)$/.exec(url.pathname))) {
    const id = decodeURIComponent(m[1]);
    const e = [...entries.values()].find((x) => idOf(x.kind, x.path) === id);
    if (!e) return res.writeHead(404).end();
    return sendFile(res, join(library, e.path), req);
  }
  const page = url.pathname === '/' ? 'index.html' : url.pathname === '/playground' ? 'playground.html' : url.pathname.slice(1);
  const file = resolve(dist, page);
  if (file.startsWith(dist) && existsSync(file) && statSync(file).isFile()) return sendFile(res, file, req);
  res.writeHead(404).end('not found');
});

const wss = new WebSocketServer({ server, path: '/graphql' });
useServer(
  {
    schema,
    roots: { query: root, mutation: root, subscription: root },
    onConnect: (ctx) => authorized(ctx.connectionParams?.Authorization),
  },
  wss,
);

entries = scan();
setWatcher(true);
server.listen(port, '127.0.0.1', () => console.log(`mock gql_media on http://127.0.0.1:${port}/ serving ${library}`));
