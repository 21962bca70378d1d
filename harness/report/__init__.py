"""Views of a :class:`~harness.records.RunReport`.

``card`` builds the model card as a document (``document``) and renders it to Markdown with
Hugging Face front matter (``frontmatter``), self-contained HTML and JSON; ``figures`` plans and
draws its plots (``plots`` has the front); ``files`` writes them beside a run; ``gallery`` draws
the CIE audit grid; ``summary`` flattens points for tables.
"""
