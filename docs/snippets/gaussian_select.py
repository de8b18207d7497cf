import emkit
from emkit import plot

X = emkit.datasets.load_faithful()
selection = emkit.select_mixture(X, n_components=range(1, 6), random_state=0)

print("best:", selection.best_params)
for row in sorted(selection.table, key=lambda r: r["bic"])[:5]:
    print(f"{row['covariance_type']:>9} K={row['n_components']}  BIC {row['bic']:9.2f}  "
          f"ICL {row['icl']:9.2f}  parameters {row['n_parameters']}")

ax = plot.bic(selection)
ax.figure.savefig("gaussian_bic.png")
