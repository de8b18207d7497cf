# Reference numbers from R mclust for emkit's fourteen covariance forms (issue 15).
#
# Usage (from the repository root):
#     Rscript benchmarks/mclust_reference.R [faithful.csv] [out.json]
# defaults: src/emkit/datasets/data/faithful.csv and tests/data/mclust_reference.json.
#
# For every one of mclust's fourteen models and G = 1..4 on Old Faithful (the CSV emkit ships,
# the same 272 rows as R's `faithful`): Mclust() from mclust's default initialisation
# (model-based hierarchical clustering), EM to a relative log-likelihood change of 1e-10
# (inner M-step iterations to sqrt(eps)); it records loglik, BIC, the number of parameters
# (nMclustParams, and nVarParams: those of the covariances alone) and the parameters
# (pro, mean as G x d, sigma as G x d x d). Then mclustBIC(X, G = 1:9) with default settings
# (its three best models), and EEE with G = 3 under the default conjugate prior
# (priorControl()). Debian: apt-get install r-base-core r-cran-mclust (jsonlite comes with it).

suppressPackageStartupMessages(library(mclust))
source("benchmarks/mclust_common.R")  # read_numeric_csv, params_of, by_model

args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "src/emkit/datasets/data/faithful.csv"
out <- if (length(args) >= 2) args[2] else "tests/data/mclust_reference.json"

X <- read_numeric_csv(csv)
n <- nrow(X)
d <- ncol(X)
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
control <- emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))

fits <- list()
for (m in models) {
  for (G in 1:4) {
    key <- paste0(m, ",", G)
    fit <- tryCatch(Mclust(X, G = G, modelNames = m, control = control, verbose = FALSE),
                    error = function(e) e, warning = function(w) w)
    entry <- list(model = m, G = G, n_params = nMclustParams(m, d, G), n_var_params = nVarParams(m, d, G))
    if (inherits(fit, "condition") || is.null(fit)) {
      entry$error <- if (is.null(fit)) "Mclust returned NULL" else conditionMessage(fit)
    } else {
      entry$loglik <- fit$loglik
      entry$bic <- fit$bic
      entry$df <- fit$df
      entry$params <- params_of(fit)
    }
    fits[[key]] <- entry
  }
}

# mclustBIC with default settings over G = 1..9: its three best (model, G, BIC)
bic <- mclustBIC(X, G = 1:9, verbose = FALSE)
flat <- data.frame(model = rep(colnames(bic), each = nrow(bic)), G = rep(as.integer(rownames(bic)), ncol(bic)),
                   bic = as.numeric(bic), stringsAsFactors = FALSE)
flat <- flat[!is.na(flat$bic), ]
flat <- flat[order(-flat$bic), ][1:3, ]
top3 <- lapply(seq_len(3), function(i) list(model = flat$model[i], G = flat$G[i], bic = flat$bic[i]))

# EEE, G = 3 with the default conjugate prior
prior_fit <- Mclust(X, G = 3, modelNames = "EEE", prior = priorControl(), verbose = FALSE)
prior_entry <- list(model = "EEE", G = 3, loglik = prior_fit$loglik, bic = prior_fit$bic,
                    params = params_of(prior_fit))

result <- list(
  description = paste("R mclust reference fits of Old Faithful (emkit's faithful.csv), made by",
                      "benchmarks/mclust_reference.R: for each of the 14 models and G = 1..4, Mclust()",
                      "from its default hierarchical-clustering start with",
                      "emControl(tol = c(1e-10, sqrt(.Machine$double.eps))); sigma is G x d x d, mean G x d.",
                      "BIC is mclust's (2 loglik - npar log n, higher is better)."),
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  data = list(file = basename(csv), n = n, d = d, columns = colnames(X)),
  em_tol = c(1e-10, sqrt(.Machine$double.eps)),
  fits = fits,
  mclustBIC_top3 = top3,
  prior_EEE_3 = prior_entry
)
dir.create(dirname(out), showWarnings = FALSE, recursive = TRUE)
jsonlite::write_json(result, out, auto_unbox = TRUE, digits = I(17), pretty = TRUE)
cat("wrote", out, "\n")
