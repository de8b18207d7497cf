# Timing of R mclust's whole model search, for benchmarks/mclust_select_speed.py (issue 15, item 5).
#
# Usage: Rscript benchmarks/mclust_select_speed.R DATA.csv TOL REPEATS
#   DATA.csv  numeric columns with a header line
#   TOL       "default" (mclust's emControl(): relative change 1e-5) or "tight"
#             (emControl(tol = c(1e-10, sqrt(.Machine$double.eps))))
#   REPEATS   runs timed (the best is reported)
# Prints one JSON object: seconds of mclustBIC(X, G = 1:9) over the fourteen models (the
# hierarchical clustering included, as a user pays it), the top three and the winner's BIC.

suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
storage.mode(X) <- "double"
tol <- if (length(args) >= 2) args[2] else "default"
repeats <- if (length(args) >= 3) as.integer(args[3]) else 1L
control <- if (tol == "tight") emControl(tol = c(1e-10, sqrt(.Machine$double.eps))) else emControl()

seconds <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()[["elapsed"]]
  bic <- mclustBIC(X, G = 1:9, control = control, verbose = FALSE)
  seconds[r] <- proc.time()[["elapsed"]] - t0
}
top <- pickBIC(bic, 3)
cat(jsonlite::toJSON(list(seconds = min(seconds), all_seconds = seconds, n = nrow(X), d = ncol(X), tol = tol,
                          top3 = names(top), top3_bic = as.numeric(top),
                          r_version = R.version.string, mclust_version = as.character(packageVersion("mclust"))),
                     auto_unbox = TRUE, digits = I(12)))
cat("\n")
