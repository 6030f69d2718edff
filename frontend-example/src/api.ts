// Transport: plain fetch for queries and mutations, graphql-ws for subscriptions.
// Same origin: POST /graphql and ws(s)://<host>/graphql (graphql-transport-ws).
import { createClient, type Client } from 'graphql-ws';

const TOKEN_KEY = 'gql_media.token';

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage unavailable: keep going without persistence */
  }
}

export function authHeaders(): Record<string, string> {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export const httpUrl = '/graphql';
export function wsUrl(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/graphql`;
}

export interface GqlError {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

/** Thrown when the server refuses us for lack of (a valid) token. */
export class AuthError extends Error {}

export class GraphQLRequestError extends Error {
  constructor(
    message: string,
    readonly errors: GqlError[] = [],
  ) {
    super(message);
  }
}

const AUTH_RE = /\b(unauthori[sz]ed|unauthenticated|forbidden|not authenticated|authentication|invalid token|missing token|bearer)\b/i;

export function looksLikeAuthError(errors: GqlError[] | undefined): boolean {
  return !!errors?.some((e) => {
    const code = String(e.extensions?.code ?? '');
    return /UNAUTHENTICATED|FORBIDDEN|UNAUTHORIZED/i.test(code) || AUTH_RE.test(e.message);
  });
}

type AuthListener = () => void;
const authListeners = new Set<AuthListener>();
export function onAuthRequired(fn: AuthListener): void {
  authListeners.add(fn);
}
function authRequired(): void {
  for (const fn of authListeners) fn();
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(httpUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders() },
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new GraphQLRequestError(`network error: ${(e as Error).message}`);
  }
  if (res.status === 401 || res.status === 403) {
    authRequired();
    throw new AuthError(`HTTP ${res.status}`);
  }
  let body: { data?: T | null; errors?: GqlError[] };
  try {
    body = await res.json();
  } catch {
    throw new GraphQLRequestError(`HTTP ${res.status}: not a GraphQL response`);
  }
  if (looksLikeAuthError(body.errors)) {
    authRequired();
    throw new AuthError(body.errors![0].message);
  }
  if (body.errors?.length) {
    throw new GraphQLRequestError(body.errors.map((e) => e.message).join('; '), body.errors);
  }
  if (!res.ok || body.data == null) throw new GraphQLRequestError(`HTTP ${res.status}`);
  return body.data;
}

// ------------------------------------------------------------------ websocket

export type ConnState = 'connecting' | 'connected' | 'reconnecting' | 'closed' | 'unauthorized';

export interface LiveHandlers {
  onState(state: ConnState, detail?: string): void;
  /** Called on every successful (re)connection; wasRetry is true after a drop. */
  onConnected(wasRetry: boolean): void;
}

let client: Client | null = null;

export function connect(handlers: LiveHandlers): Client {
  client?.dispose();
  let everConnected = false;
  handlers.onState('connecting');
  const c = createClient({
    url: wsUrl(),
    lazy: false,
    keepAlive: 15_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    retryWait: async (retries) => {
      // 0.5s, 1s, 2s, ... capped at 5s, with a little jitter
      const ms = Math.min(5000, 500 * 2 ** retries) + Math.random() * 250;
      await new Promise((r) => setTimeout(r, ms));
    },
    shouldRetry: (ev) => {
      const code = (ev as CloseEvent | undefined)?.code;
      return !(code === 4401 || code === 4403);
    },
    connectionParams: () => authHeaders(),
    on: {
      connected: (_socket, _payload, wasRetry) => {
        const retry = wasRetry || everConnected;
        everConnected = true;
        handlers.onState('connected');
        handlers.onConnected(retry);
      },
      closed: (ev) => {
        const code = (ev as CloseEvent | undefined)?.code;
        if (code === 4401 || code === 4403) {
          handlers.onState('unauthorized', (ev as CloseEvent).reason);
          authRequired();
        } else if (c === client) {
          handlers.onState('reconnecting', code ? `closed (${code})` : undefined);
        }
      },
      error: () => handlers.onState('reconnecting', 'connection error'),
    },
  });
  client = c;
  return c;
}

export function disconnect(): void {
  const c = client;
  client = null;
  c?.dispose();
}

export interface SubHandlers<T> {
  next(data: T): void;
  error?(e: unknown): void;
  complete?(): void;
}

/** Subscribe on the current client; returns an unsubscribe function. */
export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  h: SubHandlers<T>,
): () => void {
  if (!client) throw new Error('not connected');
  return client.subscribe<T>(
    { query, variables },
    {
      next: (msg) => {
        if (msg.errors?.length) {
          if (looksLikeAuthError(msg.errors as GqlError[])) authRequired();
          h.error?.(new GraphQLRequestError(msg.errors.map((e) => e.message).join('; ')));
          return;
        }
        if (msg.data) h.next(msg.data as T);
      },
      error: (e) => {
        const errs = Array.isArray(e) ? (e as GqlError[]) : undefined;
        if (looksLikeAuthError(errs)) authRequired();
        h.error?.(e);
      },
      complete: () => h.complete?.(),
    },
  );
}
