"""The journal: protocols (journal.py), shared rules (rules.py), rows (rows.py), search (search.py),
one module per backend (sqlite, postgres, memory) chosen by URL scheme (factory.py), the hash chain,
the archive, applicant references and the replay service."""
