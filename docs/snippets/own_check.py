import numpy as np
from emkit.models.linkage import GeneticLinkage      # the Linkage class of the example above
from emkit.testing import ModelCheckError, check_model

# the 197 animals in three batches: one row per batch, so there are rows to split
batches = (np.array([[60, 9, 11, 16], [40, 5, 4, 10], [25, 4, 5, 8]], dtype=float),)
print(check_model(GeneticLinkage(), batches))


class Hasty(GeneticLinkage):                         # over-relaxed: not the maximiser
    def m_step(self, stats, params):
        p = params["p"]
        return {"p": p + 2.5 * (stats[0] / stats.sum() - p)}


try:
    check_model(Hasty(), batches)
except ModelCheckError as error:                     # an AssertionError, so pytest reports it well
    print(error.check, "-", error.detail[:120], "...")
