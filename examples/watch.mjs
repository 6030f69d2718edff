// Print a running gql_media server's library changes as JSON lines, with graphql-ws (graphql-transport-ws).
//
//   cd examples && npm ci && node watch.mjs [UNDER_PATH]
//
// GQL_MEDIA_SERVER (default http://127.0.0.1:8000) and GQL_MEDIA_API_TOKEN as for `gql-media watch`.
// Runs until interrupted; exits 3 when the server cannot be reached or refuses.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const server = (process.env.GQL_MEDIA_SERVER ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
const token = process.env.GQL_MEDIA_API_TOKEN;

const client = createClient({
  url: server.replace(/^http/, 'ws') + '/graphql',
  webSocketImpl: WebSocket,
  connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
  retryAttempts: 0,
  on: { connected: () => console.error(`watch.mjs: watching ${server} (Ctrl-C stops)`) },
});

const query = `subscription ($under: String) {
  libraryChanged(underPath: $under) { sequence kind id path oldPath rootPath jobId }
}`;

client.subscribe(
  { query, variables: { under: process.argv[2] ?? null } },
  {
    next: (result) => {
      if (result.errors) fail(result.errors.map((e) => e.message).join('; '));
      else console.log(JSON.stringify(result.data.libraryChanged));
    },
    error: (error) => fail(describe(error)),
    complete: () => fail('the server ended the subscription'),
  },
);

function describe(error) {
  if (Array.isArray(error)) return error.map((e) => e.message).join('; ');
  if (error instanceof Error) return error.message;
  if (error && typeof error === 'object' && 'code' in error) return `closed with ${error.code} ${error.reason ?? ''}`;
  if (error && typeof error === 'object' && 'message' in error) return `cannot reach ${server}: ${error.message}`;
  return String(error);
}

function fail(reason) {
  console.error(`watch.mjs: ${reason}`);
  client.dispose();
  process.exit(3);
}
