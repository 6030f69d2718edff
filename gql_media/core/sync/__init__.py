"""Two-way sync of parts of the library: compare disk and index under some scopes, write the difference.

Entries keep their ids when they move. The modules, in the order a sync runs them:

- ``survey``: walk the disk and read the index under the scopes, in rounds that widen a scope
  where it must (a folder new on disk is walked whole, one gone from disk is read whole);
- ``diff``: what counts as kept, updated, added, removed or moved (pure; the specification);
- ``plan``: ids for new entries and parent ids for new and moved ones (pure);
- ``engine``: ``SyncEngine`` runs the rounds, then writes the plan in batches and publishes the changes.
"""

from gql_media.core.sync.engine import SyncEngine, SyncOutcome

__all__ = ["SyncEngine", "SyncOutcome"]
