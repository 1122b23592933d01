"""`python -m medchain.cli`: what the devnet runs for each node process."""

from medchain.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports this module
    main()
