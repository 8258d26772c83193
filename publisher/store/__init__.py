"""The state database: schema, ledger, subscribers, what builds published; and locks."""
