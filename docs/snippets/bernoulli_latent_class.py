import numpy as np
import emkit

# 600 people answer 6 yes/no questions; two hidden classes answer with different probabilities.
rng = np.random.default_rng(1)
truth = np.array([[0.9, 0.8, 0.9, 0.2, 0.1, 0.3],
                  [0.2, 0.3, 0.1, 0.8, 0.9, 0.7]])
labels = rng.random(600) < 0.35
answers = (rng.random((600, 6)) < truth[labels.astype(int)]).astype(float)

lca = emkit.BernoulliMixture(2, n_init=3, random_state=0).fit(answers)
order = np.argsort(lca.probs_[:, 0])[::-1]
print("class sizes:", lca.weights_[order].round(3))
print("probability of a yes:\n", lca.probs_[order].round(2))

# Answers with more than two categories: a categorical mixture (codes 0, 1, 2, ...).
codes = answers.astype(int) + (rng.random((600, 6)) < 0.2)   # codes 0, 1 and 2
polytomous = emkit.CategoricalMixture(2, random_state=0).fit(codes)
print("categories per question:", polytomous.n_categories_, " probs shape:", polytomous.probs_.shape)
