"""``python -m affectstream`` runs the command line."""

from affectstream.cli import main

raise SystemExit(main())
