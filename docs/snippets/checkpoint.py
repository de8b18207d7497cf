import os
import numpy as np
import emkit

days = emkit.datasets.load_hasselblad_deaths()
settings = dict(random_state=0, stop="params_maxabs", tol=1e-10, max_iter=10_000)


def crash_at_300(iteration, params, loglik):        # stands in for a power cut or kill -9
    if iteration == 300:
        raise KeyboardInterrupt


slow = emkit.PoissonMixture(2, checkpoint="deaths.ckpt", checkpoint_every=50, callback=crash_at_300,
                            **settings)
try:
    slow.fit(days["deaths"], sample_weight=days["freq"])
except KeyboardInterrupt:
    print("interrupted; checkpoint on disk:", os.path.exists("deaths.ckpt"))

# The same fit again resumes from iteration 300 and removes the file when it ends.
resumed = emkit.PoissonMixture(2, checkpoint="deaths.ckpt", checkpoint_every=50, **settings).fit(
    days["deaths"], sample_weight=days["freq"])
plain = emkit.PoissonMixture(2, **settings).fit(days["deaths"], sample_weight=days["freq"])
print("iterations:", resumed.n_iter_, " checkpoint left:", os.path.exists("deaths.ckpt"))
print("bit-identical to an uninterrupted fit:", np.array_equal(resumed.rates_, plain.rates_))
