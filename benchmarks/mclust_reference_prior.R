# Reference numbers from R mclust for emkit's conjugate prior (issue 15, item 2).
#
# Usage (from the repository root):
#     Rscript benchmarks/mclust_reference_prior.R [faithful.csv] [out.json]
# defaults: src/emkit/datasets/data/faithful.csv and tests/data/mclust_prior.json.
# Debian: apt-get install r-base-core r-cran-mclust (jsonlite comes with it).
#
# On Old Faithful:
#   * for the ten forms mclust has a prior for (EII, VII, EEI, VEI, EVI, VVI, EEE, EEV, VEV, VVV)
#     and G = 1..4:
#     Mclust() with priorControl() (mclust's default prior) from its hierarchical start, EM to a
#     tight tolerance (emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))): the observed
#     log-likelihood at the posterior mode, the BIC and the parameters; and the hyperparameters
#     of defaultPrior() for each;
#   * the same for EEE and VVV, G = 3, with user hyperparameters
#     priorControl(shrinkage = 0.5, scale = ...) (not dof: mclust's defaultPrior() ignores a dof
#     argument and always uses d + 2);
#   * mclustBIC(X, G = 1:9, prior = priorControl()) with mclust's default settings: the table
#     (models mclust can fit with a prior; null where it fits nothing) and its top three.

suppressPackageStartupMessages(library(mclust))
source("benchmarks/mclust_common.R")  # read_numeric_csv, params_of, by_model

args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "src/emkit/datasets/data/faithful.csv"
out <- if (length(args) >= 2) args[2] else "tests/data/mclust_prior.json"

X <- read_numeric_csv(csv)
n <- nrow(X)
d <- ncol(X)
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
control <- emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))

fits <- list()
for (m in models) {
  for (G in 1:4) {
    fit <- Mclust(X, G = G, modelNames = m, prior = priorControl(), control = control, verbose = FALSE)
    if (is.null(fit)) {  # mclust fits nothing here (say, a mixing proportion estimated as zero)
      message("mclust fits nothing for ", m, ",", G)
      next
    }
    hyper <- defaultPrior(X, G, m)
    fits[[paste(m, G, sep = ",")]] <- list(
      model = m, G = G, loglik = fit$loglik, bic = fit$bic, df = fit$df, params = params_of(fit),
      prior = list(shrinkage = hyper$shrinkage, mean = as.numeric(hyper$mean), dof = hyper$dof,
                   scale = if (is.matrix(hyper$scale)) lapply(1:d, function(i) as.numeric(hyper$scale[i, ]))
                           else as.numeric(hyper$scale)))
  }
}

user_scale <- diag(c(0.5, 20))
user <- list()
for (m in c("EEE", "VVV")) {
  fit <- Mclust(X, G = 3, modelNames = m, control = control, verbose = FALSE,
                prior = priorControl(shrinkage = 0.5, scale = user_scale))
  user[[m]] <- list(model = m, G = 3, loglik = fit$loglik, bic = fit$bic, params = params_of(fit))
}

bic <- mclustBIC(X, G = 1:9, prior = priorControl(), verbose = FALSE)
top <- pickBIC(bic, 3)

result <- list(
  description = paste("R mclust reference fits with the conjugate prior on Old Faithful (emkit's faithful.csv),",
                      "made by benchmarks/mclust_reference_prior.R: Mclust(prior = priorControl()) for",
                      "EII, VII, EEI, VEI, EVI, VVI, EEE, EEV, VEV, VVV and G = 1..4 to a tight tolerance (loglik is the observed",
                      "log-likelihood at the posterior mode; bic mclust's sign), two fits with user",
                      "hyperparameters (shrinkage 0.5, scale diag(0.5, 20); dof d + 2), and mclustBIC with the",
                      "default prior and default settings (G = 1..9; null where mclust fits nothing)."),
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  data = list(file = basename(csv), n = n, d = d, columns = colnames(X)),
  em_tol = control$tol,
  fits = fits,
  user = user,
  user_prior = list(shrinkage = 0.5, dof = d + 2, scale = lapply(1:d, function(i) as.numeric(user_scale[i, ]))),
  bic_models = colnames(bic),
  bic = by_model(bic),
  top3 = lapply(names(top), function(key) {
    parts <- strsplit(key, ",")[[1]]
    list(model = parts[1], G = as.integer(parts[2]), bic = as.numeric(bic[parts[2], parts[1]]))
  })
)
dir.create(dirname(out), showWarnings = FALSE, recursive = TRUE)
jsonlite::write_json(result, out, auto_unbox = TRUE, digits = I(17), pretty = TRUE, na = "null")
cat("wrote", out, "\n")
print(summary(bic))
