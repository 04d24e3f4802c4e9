"""`python -m cli …`, as devstack starts its children: the `tradewire` command."""

from cli import main

main()
