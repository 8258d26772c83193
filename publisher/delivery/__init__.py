"""Handing messages over: transports (Maildir outbox, SMTP) and the loop that feeds them."""
