# EM iterations of R mclust per covariance form and number of components on Old Faithful, from
# mclust's default start (hclass(hc(X, use = "SVD"), G), as mclustBIC) with its default stopping
# rule, for comparison with emkit's n_iter_ (benchmarks/README.md, issue 15 item 5).
#
# Usage: Rscript benchmarks/mclust_iterations.R [DATA.csv]
# Prints one line per form: the iterations for G = 1..9 (NA where mclust does not report them)
# and their sum, then the total.

suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) >= 1) args[1] else "src/emkit/datasets/data/faithful.csv"
X <- as.matrix(read.csv(path))
tree <- hc(X, use = "SVD")  # mclustBIC's default (hc() alone defaults to use = "VARS")
forms <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
total <- 0
for (form in forms) {
  iterations <- c(0)
  for (G in 2:9) {
    fit <- me(data = X, modelName = form, z = unmap(hclass(tree, G)), warn = FALSE)
    it <- attr(fit, "info")["iterations"]
    iterations <- c(iterations, if (is.null(it) || length(it) == 0) NA else as.numeric(it[1]))
  }
  total <- total + sum(iterations, na.rm = TRUE)
  cat(form, iterations, "sum", sum(iterations, na.rm = TRUE), "\n")
}
cat("total", total, "\n")
