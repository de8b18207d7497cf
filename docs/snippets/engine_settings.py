import numpy as np
import emkit

coins = emkit.datasets.load_two_coins()

# Every estimator takes the engine's settings; here the stopping rule and restarts.
for stop, tol in [("loglik", 1e-8), ("loglik_rel", 1e-10), ("params_maxabs", 1e-10)]:
    fit = emkit.BinomialMixture(2, stop=stop, tol=tol, n_init=4, random_state=0).fit(
        coins["heads"], trials=10)
    print(f"{stop:>14}: {fit.n_iter_:3d} iterations, probs {np.sort(fit.probs_).round(6)}")

# A callback sees the start (iteration 0) and every iteration.
seen = []
emkit.BinomialMixture(2, probs_init=[0.6, 0.5], random_state=0, max_iter=3, tol=0,
                      callback=lambda it, params, loglik: seen.append((it, round(loglik, 4)))).fit(
    coins["heads"], trials=10)
print("callback:", seen)

# The result of the best restart, and a summary of every restart.
fit = emkit.BinomialMixture(2, n_init=4, random_state=0).fit(coins["heads"], trials=10)
print("restart log-likelihoods:", [round(r.loglik, 4) for r in fit.result_.restarts],
      "best:", fit.result_.best_restart)
print("trace never decreases:", bool(np.all(np.diff(fit.loglik_trace_) >= -1e-12)))
