"""Yunhan Jepsen-style fault-injection harness (see jepsen/README.md)."""
