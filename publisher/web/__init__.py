"""``publisher serve``: the built site, and the pages where people subscribe and leave."""
