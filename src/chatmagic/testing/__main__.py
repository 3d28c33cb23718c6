"""`python -m chatmagic.testing`: the local endpoint on a port (as `chatmagic serve`)."""

from . import main

main()
