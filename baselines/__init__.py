"""Our own reference implementations the JAX code is measured and checked against (not third-party code)."""
