"""lab: a research lab notebook and run tracker. `from lab import tracker` inside training scripts."""
