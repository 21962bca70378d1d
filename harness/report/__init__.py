"""Views of a :class:`~harness.records.RunReport`: the Markdown model card and the front plot."""
