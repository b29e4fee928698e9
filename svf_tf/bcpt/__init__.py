"""Background Clustering Pre-Training (BCPT; Yu, Lin, Xu): the second paper's pre-training.

`clustering` (Sec. 2.1, Eq. 1), `losses` (Sec. 2.2, Eq. 2-4) and
`guidance` (Sec. 2.3, Eq. 5-7) are the objective's pieces; the choices
the paper leaves open are in docs/bcpt.md.
"""
