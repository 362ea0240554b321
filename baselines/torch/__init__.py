"""The PyTorch baseline the JAX code is measured against: the HeRL loss and a train step in torch."""
