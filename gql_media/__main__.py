"""``python -m gql_media`` is the same as the ``gql-media`` command."""

from gql_media.cli import main

raise SystemExit(main())
