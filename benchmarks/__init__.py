"""Side-by-side benchmarks of the chat server against its baselines, on 127.0.0.1.

Run ``python -m benchmarks --help``. Each scenario starts the servers it
compares as child processes, drives them from this process with the same
client code and pacing, and stops them. Results are ratios measured in one
run on one machine; they are not timed tests.
"""

from __future__ import annotations

__all__: list[str] = []
