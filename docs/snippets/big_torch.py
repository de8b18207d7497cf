# needs: torch
import torch
import emkit

device = "cuda" if torch.cuda.is_available() else "cpu"
X = torch.as_tensor(emkit.datasets.load_faithful(), device=device)

gmm = emkit.GaussianMixture(2, random_state=0).fit(X)       # the E- and M-steps run in torch
print(type(gmm.means_).__name__, gmm.means_.dtype, gmm.means_.device.type)
print(gmm.predict_proba(X[:2]).cpu().numpy().round(4))
print("log-likelihood:", round(gmm.loglik_, 3))
