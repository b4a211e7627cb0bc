"""Benchmarks of cdist-trio against cdist 7.0.0 (`nox -s bench`, `bench-transport`,
`bench-scale`); see benchmarks/README.md."""
