"""The reading side: reports of finished (or stopped) runs, and comparisons across runs.

Nothing here imports torch: a report builds fast, and on a machine without torch, from the
run directory's tables alone (:mod:`.load`), with statistics from scipy (:mod:`.stats`),
plots from matplotlib (:mod:`.plots`) and pages from jinja2 templates (:mod:`.render`).
"""
