"""The digest: which posts each subscriber gets, the message, its links, the subscription lifecycle."""
