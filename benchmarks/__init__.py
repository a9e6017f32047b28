"""asv benchmarks of digitbench: one file per area; shared builders in common.py."""
