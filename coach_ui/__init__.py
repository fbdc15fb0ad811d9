"""Views of live calls for people: the terminal transcript of the demo (the agent panel and the
supervisor wall board build on the same events)."""
