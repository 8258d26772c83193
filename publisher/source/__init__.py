"""Reading: saved archive pages -> one chronological, de-duplicated post stream."""
