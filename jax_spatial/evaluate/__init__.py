"""Measuring the engine against ground truth."""
