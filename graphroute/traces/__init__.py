"""Traces: what every optimized run did, and what can be learnt from it.

``store`` (SQLite, WAL, migrations) and ``records`` hold runs, calls, node executions and
feedback; ``quality`` computes automatic signals when a call finishes and ``outcomes`` the
scores the bandit and the planner read; ``transfer`` moves traces as JSON lines; ``plans``,
``replay`` and ``render`` compare plans on recorded runs; ``report`` and ``html`` build the
HTML report; ``preferences`` exports preference pairs.
"""
