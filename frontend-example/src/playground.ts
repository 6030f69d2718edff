// Offline GraphiQL: everything (GraphiQL, Monaco, its workers and fonts) is bundled by Vite,
// nothing is loaded from a CDN. Queries go over HTTP POST /graphql, subscriptions over
// ws(s)://<host>/graphql (graphql-transport-ws), both with the app's API token if one is stored.
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { authHeaders, httpUrl, wsUrl } from './api';

const headers = authHeaders();

const fetcher = createGraphiQLFetcher({
  url: httpUrl,
  subscriptionUrl: wsUrl(),
  headers,
  wsConnectionParams: headers,
});

const defaultQuery = `# gql_media playground. Run a query, or a subscription and change files on disk.

query Library {
  roots {
    id
    name
    rootPath
    videoCount(recursive: true)
    entries(first: 20) {
      totalCount
      edges {
        node {
          __typename
          ... on Folder { id name path videoCount(recursive: true) }
          ... on Video { id name path durationSeconds size thumbnailUrl streamUrl }
        }
      }
    }
  }
  watcher { enabled mode error }
}

subscription Changes {
  libraryChanged {
    sequence
    kind
    path
    oldPath
    entry { __typename ... on Video { id name status } ... on Folder { id name } }
  }
}

subscription Progress {
  syncProgress { jobId state phase done total added updated removed moved failed }
}

mutation Sync {
  syncLibrary(mode: INCREMENTAL) { id state }
}
`;

const root = createRoot(document.getElementById('graphiql')!);
root.render(
  createElement(GraphiQL, {
    fetcher,
    defaultQuery,
    defaultHeaders: Object.keys(headers).length ? JSON.stringify(headers, null, 2) : undefined,
    defaultEditorToolsVisibility: false,
  }),
);
