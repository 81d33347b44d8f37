"""``python -m satclip``: the ``satclip`` command."""

from satclip.cli import main

raise SystemExit(main())
