"""`python -m phidb` runs the `phidb` command line."""

from phidb.cli import main

main()
