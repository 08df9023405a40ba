"""Load tests of the collector: `python -m bench [--smoke|--quick|--full]` (see bench/README.md)."""
