"""Scans, dataset readers and writers, preprocessing and synthetic data."""
