"""The journal: protocols (journal.py), shared rules (rules.py), rows (rows.py), search (search.py),
one module per backend (sqlite, postgres, memory) chosen by URL scheme (factory.py), the hash chain
(chain.py), its signed head and checkpoints (checkpoints.py), what verify proves (audit.py), sealed
payloads (seal.py) under keys kept outside the journal (keys.py) and rotated by rekey (rekey.py),
the archive, applicant references and the replay service. See docs/security.md."""
