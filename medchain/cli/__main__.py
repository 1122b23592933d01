"""`python -m medchain.cli`: what the devnet runs for each node process."""

from medchain.cli import main

main()
