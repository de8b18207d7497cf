# Reference numbers from R mclust for emkit's hierarchical initialisation (issue 15, item 3).
#
# Usage (from the repository root):
#     Rscript benchmarks/mclust_reference_hc.R [faithful.csv] [out.json]
# defaults: src/emkit/datasets/data/faithful.csv and tests/data/mclust_hc.json.
#
# mclust's default initialisation of Mclust()/mclustBIC() is model-based hierarchical
# agglomeration, hc(data, modelName = mclust.options("hcModelName") = "VVV",
# use = mclust.options("hcUse") = "SVD"), cut by hclass(hc, G); EM starts with the M-step of
# that hard classification. This script records, for Old Faithful (the CSV emkit ships) and for
# R's iris (its 4 numeric columns, written into the JSON since emkit does not ship iris):
#   * the merge sequence (hc's 2 x (n-1) matrix, 1-based row labels) and
#   * the hclass partitions for G = 1..9 (labels 1..G in order of first appearance)
# for hc models VVV (under every transform of hcUse), VII and EII (under SVD and VARS).
# Debian: apt-get install r-base-core r-cran-mclust (jsonlite comes with it).

suppressPackageStartupMessages(library(mclust))

args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "src/emkit/datasets/data/faithful.csv"
out <- if (length(args) >= 2) args[2] else "tests/data/mclust_hc.json"

faithful_x <- as.matrix(read.csv(csv))
storage.mode(faithful_x) <- "double"
iris_x <- as.matrix(iris[, 1:4])
dimnames(iris_x) <- NULL
storage.mode(iris_x) <- "double"

uses <- c("SVD", "VARS", "STD", "SPH", "PCS", "PCR")
runs <- list(
  list(model = "VVV", uses = uses),
  list(model = "VII", uses = c("SVD", "VARS")),
  list(model = "EII", uses = c("SVD", "VARS"))
)

trees_of <- function(X) {
  trees <- list()
  for (run in runs) {
    for (use in run$uses) {
      tree <- hc(X, modelName = run$model, use = use)
      cls <- hclass(tree, 1:9)
      trees[[paste0(run$model, ",", use)]] <- list(
        model = run$model, use = use,
        merges = lapply(seq_len(ncol(tree)), function(k) as.integer(tree[, k])),
        partitions = lapply(setNames(as.character(1:9), as.character(1:9)),
                            function(g) as.integer(cls[, g])))
    }
  }
  trees
}

result <- list(
  description = paste("R mclust hierarchical agglomeration (hc) and its cuts (hclass), made by",
                      "benchmarks/mclust_reference_hc.R. merges: hc's pairs (1-based row labels, each",
                      "cluster named by its smallest row); partitions[G]: hclass(hc, G), labels 1..G.",
                      "Keys are 'model,use'."),
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  options = list(hcModelName = mclust.options("hcModelName"), hcUse = mclust.options("hcUse"),
                 subset = mclust.options("subset")),
  faithful = list(file = basename(csv), n = nrow(faithful_x), d = ncol(faithful_x), trees = trees_of(faithful_x)),
  iris = list(n = nrow(iris_x), d = ncol(iris_x),
              X = lapply(seq_len(nrow(iris_x)), function(i) as.numeric(iris_x[i, ])),
              trees = trees_of(iris_x))
)
dir.create(dirname(out), showWarnings = FALSE, recursive = TRUE)
jsonlite::write_json(result, out, auto_unbox = TRUE, digits = I(17), pretty = FALSE)
cat("wrote", out, "\n")
