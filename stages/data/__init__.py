"""MNIST from its verified sources, and the checks on its arrays."""
