# Reference numbers from R mclust for emkit's model selection (issue 15, item 4).
#
# Usage (from the repository root):
#     Rscript benchmarks/mclust_reference_select.R [faithful.csv] [out.json]
# defaults: src/emkit/datasets/data/faithful.csv and tests/data/mclust_select.json.
# Debian: apt-get install r-base-core r-cran-mclust (jsonlite comes with it).
#
# On Old Faithful (the CSV emkit ships, the same 272 rows as R's `faithful`), with mclust's
# default settings (hierarchical start, EM to a relative log-likelihood change of 1e-5):
#   * mclustBIC(X, G = 1:9): the whole 14 x 9 table (rows G, columns the models; NA where a
#     model could not be fitted), mclust's sign: 2 loglik - npar log n, higher is better;
#     the log-likelihood and number of parameters of each cell;
#   * mclustICL(X, G = 1:9): the same layout; mclust's ICL is BIC + 2 sum_i log z_i,map
#     (icl.Mclust: the hard MAP classification C, 2 * sum(C * log z));
#   * the three best models of summary(BIC) ("Top 3 models based on the BIC criterion");
#   * EEE with G = 3 run to a tight tolerance (emControl(tol = c(1e-10, sqrt(eps)))): its
#     parameters and the uncertainty of each row (1 - max_k z_ik; mod$uncertainty, and
#     recomputed by estep() at the returned parameters);
#   * mclustBootstrapLRT(X, modelName = "VVV", maxG = 4, nboot = NBOOT) with set.seed(SEED):
#     the observed statistics 2 (loglik_{G+1} - loglik_G) of G = 1..4 (deterministic), the
#     bootstrap p-values (random: for a loose check only) and the log-likelihoods of the fits.

suppressPackageStartupMessages(library(mclust))
source("benchmarks/mclust_common.R")  # read_numeric_csv, params_of, by_model

args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "src/emkit/datasets/data/faithful.csv"
out <- if (length(args) >= 2) args[2] else "tests/data/mclust_select.json"
NBOOT <- 199
SEED <- 20240615

X <- read_numeric_csv(csv)
n <- nrow(X)
d <- ncol(X)
G <- 1:9

bic <- mclustBIC(X, G = G, verbose = FALSE)
models <- colnames(bic)
npar <- sapply(models, function(m) sapply(G, function(g) nMclustParams(m, d, g)))
rownames(npar) <- G
loglik <- (unclass(bic)[, models, drop = FALSE] + npar * log(n)) / 2

icl <- mclustICL(X, G = G, verbose = FALSE)

sumry <- summary(bic, X)
best_fit <- Mclust(X, x = bic, verbose = FALSE)   # the default Mclust() winner, from the same table
top <- names(pickBIC(bic, 3))   # "EEE,3" ...
top3 <- lapply(top, function(key) {
  parts <- strsplit(key, ",")[[1]]
  list(model = parts[1], G = as.integer(parts[2]), bic = as.numeric(bic[parts[2], parts[1]]))
})

# EEE, G = 3 to a tight tolerance: parameters and uncertainty
control <- emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))
fit <- Mclust(X, G = 3, modelNames = "EEE", control = control, verbose = FALSE)
z <- estep(data = X, modelName = "EEE", parameters = fit$parameters)$z
sigma <- fit$parameters$variance$sigma
mean <- matrix(fit$parameters$mean, nrow = d)
eee3 <- list(model = "EEE", G = 3, loglik = fit$loglik, bic = fit$bic,
             pro = as.numeric(fit$parameters$pro),
             mean = lapply(1:3, function(k) as.numeric(mean[, k])),
             sigma = lapply(1:3, function(k) lapply(1:d, function(i) as.numeric(sigma[i, , k]))),
             uncertainty = as.numeric(fit$uncertainty),
             uncertainty_estep = as.numeric(1 - apply(z, 1, max)),
             classification = as.integer(fit$classification))

# bootstrap LRT for VVV, G = 1..4 against G + 1 (maxG given: no sequential stop)
set.seed(SEED)
lrt <- mclustBootstrapLRT(X, modelName = "VVV", maxG = 4, nboot = NBOOT, verbose = FALSE)
vvv_loglik <- sapply(1:5, function(g) summary(bic, X, G = g, modelNames = "VVV")$loglik)
lrt_entry <- list(model = "VVV", G = as.integer(lrt$G), obs = as.numeric(lrt$obs),
                  p_value = as.numeric(lrt$p.value), nboot = NBOOT, seed = SEED,
                  boot_mean = as.numeric(colMeans(lrt$boot)), loglik = as.numeric(vvv_loglik))

result <- list(
  description = paste("R mclust reference numbers for model selection on Old Faithful (emkit's",
                      "faithful.csv), made by benchmarks/mclust_reference_select.R with mclust's default",
                      "settings: mclustBIC and mclustICL tables (by model, G = 1..9; mclust's sign,",
                      "higher is better; null where mclust fitted nothing), the log-likelihood and",
                      "parameter count of each cell, summary's top 3, the tight-tolerance EEE,3 fit with",
                      "the uncertainty of each row, and mclustBootstrapLRT for VVV (maxG = 4; the",
                      "p-values are random)."),
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  data = list(file = basename(csv), n = n, d = d, columns = colnames(X)),
  G = G,
  models = models,
  bic = by_model(bic),
  icl = by_model(icl),
  loglik = by_model(loglik),
  n_params = by_model(npar),
  top3 = top3,
  summary_best = list(model = best_fit$modelName, G = best_fit$G, loglik = best_fit$loglik, bic = best_fit$bic,
                      icl = icl(best_fit)),
  EEE_3 = eee3,
  bootstrap_lrt = lrt_entry
)
dir.create(dirname(out), showWarnings = FALSE, recursive = TRUE)
jsonlite::write_json(result, out, auto_unbox = TRUE, digits = I(17), pretty = TRUE, na = "null")
cat("wrote", out, "\n")
print(bic)
print(summary(bic))
print(icl)
print(lrt)
