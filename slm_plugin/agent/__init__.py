"""The SLM agent: runs on every compute host, measures guests and drives their migrations."""
