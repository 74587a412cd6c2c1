"""Pitwall benchmarks: `make bench` (python -m bench) runs them side by side with their ceilings."""
