"""python -m nst_helpers: the same command line as nst-stylize."""

from .cli import main

raise SystemExit(main())
