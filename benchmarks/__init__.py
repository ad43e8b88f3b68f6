"""Speed and memory benchmarks of MT2KD against its teachers (scripts, not tests): `python benchmarks/run.py`."""
