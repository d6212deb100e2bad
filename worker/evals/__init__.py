"""Benchmarks for the models the recipe uses, as plain functions with a small CLI each."""
