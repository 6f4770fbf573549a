"""`python -m phidb_bench`: what `bench/run` executes."""

import sys

from phidb_bench.main import main

sys.exit(main())
