"""TFDS datasets built by the engine (`spatial_qa`) and the example layout they share."""
