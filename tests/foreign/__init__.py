"""Partner systems written outside the project, simulated in their own conventions and stacks.

Each module here stands alone (it imports nothing of the broker) and keeps its own log of what it
received and decided, so that tests can check outcomes from the partner's side.
"""
