"""``python -m ktrdr``: the same as the ``ktrdr`` command."""

from ktrdr.cli import main

main()
