"""The lab's pages in HTML: `frame` (pages, page kinds other modules register, the autoescaped environment, JSON
for `<script>`), `build` (lab site and its built-in kinds), `charts` (any metric stream as chart data), `serve`
(lab serve, read-only) and `publish` (lab site --branch: the lab-pages branch). `frame`'s docstring says how
to register a page kind.
May import: lab.errors, lab.records, lab.families, lab.health, lab.tracking, lab.launcher, lab.pages, lab.runs.
"""
