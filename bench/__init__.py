"""gql_media's benchmarks: ratios against the physical floor, measured side by side in one run.

``python -m bench [--quick] [--only P1,P2]`` prints a table and writes ``bench/results.json``.
Never part of the test suite: machines are shared and noisy, so every figure here is a median
of repetitions and, where there is a reference, a ratio of two things timed in the same run.
"""
