"""What crosses between nodes: entitlement, the federation database, the sync transport."""
