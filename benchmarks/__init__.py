"""fastnn benchmarks: `python -m benchmarks [--quick] [--json FILE]`."""
