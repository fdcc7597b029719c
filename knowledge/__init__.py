"""Policy documents to clauses to search. A pure library: no chat, no platforms."""
