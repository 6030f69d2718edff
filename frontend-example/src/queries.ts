// GraphQL documents and the TypeScript shapes of their results (written against the public API outline).

export type VideoStatus = 'PENDING' | 'READY' | 'BROKEN';
export type JobState = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
export type SyncPhase = 'SCANNING' | 'DIFFING' | 'WRITING' | 'PROBING' | 'THUMBNAILS' | 'MERGING' | 'DONE';
export type ChangeKind = 'ADDED' | 'UPDATED' | 'REMOVED' | 'MOVED' | 'RESYNC' | 'ROOT_ADDED' | 'ROOT_REMOVED' | 'SUBTREE_CHANGED';

export interface Folder {
  __typename: 'Folder';
  id: string;
  name: string;
  path: string;
  rootPath: string;
  videoCount: number;
  totalSize: number;
  parent: { id: string } | null;
}

export interface Video {
  __typename: 'Video';
  id: string;
  name: string;
  path: string;
  rootPath: string;
  size: number;
  modifiedAt: string;
  durationSeconds: number | null;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  container: string | null;
  status: VideoStatus;
  error: string | null;
  thumbnailUrl: string | null;
  streamUrl: string;
  folder: { id: string };
}

export type Entry = Folder | Video;

export interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}

export interface SyncProgress {
  sequence: number;
  jobId: string;
  state: JobState;
  phase: SyncPhase;
  done: number;
  total: number | null;
  currentPath: string | null;
  added: number;
  updated: number;
  removed: number;
  moved: number;
  failed: number;
  elapsedSeconds: number;
}

export interface SyncJob {
  id: string;
  mode: 'FULL' | 'INCREMENTAL';
  trigger: 'MANUAL' | 'WATCHER' | 'STARTUP';
  state: JobState;
  progress: SyncProgress;
  errors: { path: string; message: string }[];
}

export interface WatcherStatus {
  enabled: boolean;
  mode: 'NATIVE' | 'POLLING';
  error: string | null;
  roots: string[];
  pendingPaths: number;
  settleMs: number;
  lastEventAt: string | null;
  lastSyncAt: string | null;
}

export interface LibraryChange {
  sequence: number;
  kind: ChangeKind;
  id: string | null;
  path: string | null;
  oldPath: string | null;
  rootPath: string | null;
  entry: Entry | null;
  jobId: string | null;
}

const FOLDER_FIELDS = /* GraphQL */ `
  fragment FolderFields on Folder {
    __typename id name path rootPath
    videoCount(recursive: true)
    totalSize(recursive: true)
    parent { id }
  }
`;

const VIDEO_FIELDS = /* GraphQL */ `
  fragment VideoFields on Video {
    __typename id name path rootPath size modifiedAt durationSeconds width height
    videoCodec audioCodec container status error thumbnailUrl streamUrl
    folder { id }
  }
`;

const PROGRESS_FIELDS = /* GraphQL */ `
  fragment ProgressFields on SyncProgress {
    sequence jobId state phase done total currentPath
    added updated removed moved failed elapsedSeconds
  }
`;

const JOB_FIELDS = /* GraphQL */ `
  fragment JobFields on SyncJob {
    id mode trigger state
    progress { ...ProgressFields }
    errors { path message }
  }
  ${PROGRESS_FIELDS}
`;

const WATCHER_FIELDS = /* GraphQL */ `
  fragment WatcherFields on WatcherStatus {
    enabled mode error roots pendingPaths settleMs lastEventAt lastSyncAt
  }
`;

export const ROOTS = /* GraphQL */ `
  query Roots { roots { ...FolderFields } }
  ${FOLDER_FIELDS}
`;
export interface RootsResult {
  roots: Folder[];
}

export const ENTRIES = /* GraphQL */ `
  query Entries($id: ID!, $first: Int!, $after: String) {
    node(id: $id) {
      ... on Folder {
        id
        entries(first: $first, after: $after) {
          totalCount
          pageInfo { hasNextPage endCursor }
          edges { node { ...FolderFields ...VideoFields } }
        }
      }
    }
  }
  ${FOLDER_FIELDS}
  ${VIDEO_FIELDS}
`;
export interface EntriesResult {
  node: {
    id: string;
    entries: { totalCount: number; pageInfo: PageInfo; edges: { node: Entry }[] };
  } | null;
}

export const SEARCH = /* GraphQL */ `
  query Search($text: String!, $first: Int!, $after: String) {
    videos(first: $first, after: $after, filter: { nameContains: $text }, orderBy: { field: NAME, direction: ASC }) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { ...VideoFields } }
    }
  }
  ${VIDEO_FIELDS}
`;
export interface SearchResult {
  videos: { totalCount: number; pageInfo: PageInfo; edges: { node: Video }[] };
}

/** Batch-refresh folder counters with aliases: f0: node(id: ...) { ... }. */
export function folderCountsQuery(ids: string[]): string {
  const parts = ids.map(
    (id, i) =>
      `f${i}: node(id: ${JSON.stringify(id)}) { ... on Folder { id videoCount(recursive: true) totalSize(recursive: true) } }`,
  );
  return `query FolderCounts { ${parts.join('\n')} }`;
}
export type FolderCountsResult = Record<string, { id: string; videoCount: number; totalSize: number } | null>;

export const STATUS = /* GraphQL */ `
  query Status {
    watcher { ...WatcherFields }
    currentSync { ...JobFields }
    syncJobs(first: 1) { ...JobFields }
  }
  ${WATCHER_FIELDS}
  ${JOB_FIELDS}
`;
export interface StatusResult {
  watcher: WatcherStatus;
  currentSync: SyncJob | null;
  syncJobs: SyncJob[];
}

export const SYNC_LIBRARY = /* GraphQL */ `
  mutation SyncLibrary($mode: SyncMode!) { syncLibrary(mode: $mode) { ...JobFields } }
  ${JOB_FIELDS}
`;
export interface SyncLibraryResult {
  syncLibrary: SyncJob;
}

export const CANCEL_SYNC = /* GraphQL */ `
  mutation CancelSync($id: ID!) { cancelSync(id: $id) { ...JobFields } }
  ${JOB_FIELDS}
`;
export interface CancelSyncResult {
  cancelSync: SyncJob | null;
}

export const START_WATCHER = /* GraphQL */ `
  mutation StartWatcher { startWatcher { ...WatcherFields } }
  ${WATCHER_FIELDS}
`;
export const STOP_WATCHER = /* GraphQL */ `
  mutation StopWatcher { stopWatcher { ...WatcherFields } }
  ${WATCHER_FIELDS}
`;

export const REGENERATE_THUMBNAIL = /* GraphQL */ `
  mutation RegenerateThumbnail($id: ID!) { regenerateThumbnail(id: $id) { ...VideoFields } }
  ${VIDEO_FIELDS}
`;

export const SUB_LIBRARY = /* GraphQL */ `
  subscription LibraryChanged {
    libraryChanged {
      sequence kind id path oldPath rootPath jobId
      entry { ...FolderFields ...VideoFields }
    }
  }
  ${FOLDER_FIELDS}
  ${VIDEO_FIELDS}
`;
export interface LibraryChangedResult {
  libraryChanged: LibraryChange;
}

export const SUB_PROGRESS = /* GraphQL */ `
  subscription SyncProgress { syncProgress { ...ProgressFields } }
  ${PROGRESS_FIELDS}
`;
export interface SyncProgressResult {
  syncProgress: SyncProgress;
}

export const SUB_WATCHER = /* GraphQL */ `
  subscription WatcherStatus { watcherStatus { ...WatcherFields } }
  ${WATCHER_FIELDS}
`;
export interface WatcherStatusResult {
  watcherStatus: WatcherStatus;
}
