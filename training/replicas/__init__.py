"""Tiny random replicas of real model exports (layouts, names, dtypes, configs) with PyTorch golden values."""
