"""Trainers: one shared engine and one family module per model family."""
