"""Pitwall benchmarks: `make bench` (python -m bench) runs them beside their yardsticks.

Every yardstick runs in the same run on the same machine: the faster of two plain
loops for dispatch and end to end, a raw upsert for ingest, a bare Starlette route for
webhooks, procrastinate's worker for the outbox. A full run keeps its table in
bench/results/ (bench/results_file.py).
"""
