"""``publisher schedule``: the publish and digest jobs on time, by one acting process."""
