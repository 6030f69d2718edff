"""Several replicas on one PostgreSQL database: one elected leader does the work, the others forward.

The leader (``adapters.leader``) runs the job runner, the watcher and the media workers for one
*term*: from its election until it loses the lock or stops (``term``). Every replica serves
queries and subscriptions. What the API asks of the runner, the watcher and the media service
goes through the facades (``facades``): on the leader they call the term's workers; on a
follower they send a command (``commands``) as a row of ``job_requests``
(``adapters.store.requests``) and wait for the leader's answer. The replica (``replica``) holds
the election, the term, the loop serving forwarded commands and the follower's caches:
followers read jobs from the database and their live progress from the broadcast bus.
"""

from __future__ import annotations

from gql_media.adapters.store.requests import RequestFailed
from gql_media.cluster.facades import ClusterMedia, ClusterRoots, ClusterRunner, ClusterWatcher
from gql_media.cluster.replica import Cluster, OpenWorkers, StatusCallback
from gql_media.cluster.term import LeaderTerm, Workers

__all__ = [
    "Cluster",
    "ClusterMedia",
    "ClusterRoots",
    "ClusterRunner",
    "ClusterWatcher",
    "LeaderTerm",
    "OpenWorkers",
    "RequestFailed",
    "StatusCallback",
    "Workers",
]
