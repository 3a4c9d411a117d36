"""Benchmarks for the publisher: `scripts/bench NAME [--size N] [--workers K]`.

Each benchmark starts its own embedded Postgres (and simulator where it needs one), prints
one table, and exits 0 only when every post is accounted for (published once, counted at
the simulator, no duplicates); otherwise it prints the mismatch and exits 1. Missed
performance targets are marked in the table but do not change the exit code.
"""
