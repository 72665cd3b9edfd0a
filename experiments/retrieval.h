#pragma once
// The retrieval experiments (docs/paper.md E), one header for all of them: pools and scoring
// (retrieval_pools.h), sentence embeddings (embedding.h), InfoNCE fine-tuning (infonce.h), the
// frozen-embedding method (frozen_retrieval.h) and the pair sets (pair_sets.h).
#include "experiments/embedding.h"
#include "experiments/frozen_retrieval.h"
#include "experiments/infonce.h"
#include "experiments/pair_sets.h"
#include "experiments/retrieval_pools.h"
