"""The domain: exchanges, states, lifecycle rules, retry decisions, errors, ids, field paths.

Pure values and rules. Imports nothing of tongban's, so every other layer can build on it.
"""
