# Helpers shared by the mclust reference scripts (benchmarks/mclust_reference*.R), which source
# this file; run them from the repository root.

# The numeric matrix of a CSV with a header line (emkit's shipped data sets).
read_numeric_csv <- function(csv) {
  X <- as.matrix(read.csv(csv))
  storage.mode(X) <- "double"
  X
}

# A fit's parameters as JSON-ready lists: pro (G), mean (G x d), sigma (G x d x d).
params_of <- function(fit) {
  G <- fit$G
  d <- fit$d
  sigma <- fit$parameters$variance$sigma
  if (length(dim(sigma)) == 2) sigma <- array(sigma, c(d, d, G))
  mean <- matrix(fit$parameters$mean, nrow = d)
  list(pro = as.numeric(rep_len(fit$parameters$pro, G)),
       mean = lapply(seq_len(G), function(k) as.numeric(mean[, k])),
       sigma = lapply(seq_len(G), function(k) lapply(seq_len(d), function(i) as.numeric(sigma[i, , k]))))
}

# A G x models matrix (mclustBIC, mclustICL) as a list by model of its G values (NA -> null).
by_model <- function(m) {
  res <- lapply(colnames(m), function(name) as.numeric(m[, name]))
  names(res) <- colnames(m)
  res
}
