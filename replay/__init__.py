"""The journal (one module per backend) and, later, the replay service."""
