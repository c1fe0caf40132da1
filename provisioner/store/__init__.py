"""State store: metadata in SQLite, private keys in keys/ (mode 0600), one lock per store."""
