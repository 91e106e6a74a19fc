"""Congestion with tolls (docs/theory.md §11): road networks (:mod:`.network`, :mod:`.tntp`,
:mod:`.instances`), the drivers' logit/Wardrop equilibrium (:mod:`.equilibrium`), the planner
(:mod:`.planner` by implicit differentiation, :mod:`.penalty` by PBRL's value penalty), the
figure (:mod:`.figure`) and the ``stackelberg tolls`` command (:mod:`.run`)."""
