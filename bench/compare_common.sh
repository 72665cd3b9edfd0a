# The common start of bench/compare_represent.sh and bench/compare_train.sh, sourced with their
# arguments: the repository root as working directory, threads and rounds from the first two
# arguments (default 2 and 3), the mixgrad-bench of $BUILD (default: build), and load(), the
# load averages for the log. The caller shifts the two arguments away itself.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-2}
rounds=${2:-3}
bench=${BUILD:-build}/mixgrad-bench
load() { cut -d' ' -f1-3 /proc/loadavg; }
