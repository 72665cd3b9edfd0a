// experiments/retrieval: pool construction, top-1/MRR arithmetic, embedding position selection
// (with both padding sides) on a tiny model, InfoNCE training steps, and the pair-set loader.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "autograd/grad_mode.h"
#include "core/factories.h"
#include "experiments/retrieval.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/model_configs.h"
#include "test_helpers.h"
#include "tests/temp_dir.h"

using namespace mg;
using namespace mg::test;

namespace {

namespace fs = std::filesystem;

// A scorer reading a dense [queries][documents] matrix.
PoolScorer matrix_scorer(std::vector<std::vector<double>> m) {
  return [m](int64_t q, std::span<const int64_t> cands, std::span<double> out) {
    for (size_t k = 0; k < cands.size(); ++k) out[k] = m[size_t(q)][size_t(cands[k])];
  };
}

ModelConfig tiny_config(ModelKind kind) { return test::tiny_model(kind); }

constexpr int32_t kPad = 0;

}  // namespace

TEST_SUITE("retrieval") {
  TEST_CASE("pools: true document exactly once at the target, distractors distinct, seeded") {
    const int64_t n = 50;
    for (int64_t c : {2, 3, 32, 51}) {
      CAPTURE(c);
      auto pools = make_pools(n, c, 7);
      REQUIRE(int64_t(pools.size()) == n);
      std::map<int64_t, int64_t> appearances;
      std::set<int64_t> targets;
      for (int64_t q = 0; q < n; ++q) {
        const RetrievalPool& p = pools[size_t(q)];
        CHECK(p.query == q);
        REQUIRE(int64_t(p.candidates.size()) == c - 1);
        CHECK(p.candidates[size_t(p.target)] == q);
        CHECK(std::count(p.candidates.begin(), p.candidates.end(), q) == 1);
        CHECK(std::set<int64_t>(p.candidates.begin(), p.candidates.end()).size() == p.candidates.size());
        for (int64_t d : p.candidates) {
          CHECK((d >= 0 && d < n));
          if (d != q) ++appearances[d];
        }
        targets.insert(p.target);
      }
      if (c == 32) {
        // Each document is a distractor 50 * 30 / 49 ~ 31 times on average: all of them appear,
        // and the true slot is spread over the pool.
        CHECK(appearances.size() == size_t(n));
        CHECK(targets.size() > 20);
      }
      if (c == 51) CHECK(appearances.size() == size_t(n));  // every other document, every time
    }
    auto a = make_pools(n, 32, 7), b = make_pools(n, 32, 7), other = make_pools(n, 32, 8);
    bool same = true, differs = false;
    for (int64_t q = 0; q < n; ++q) {
      same = same && a[size_t(q)].candidates == b[size_t(q)].candidates && a[size_t(q)].target == b[size_t(q)].target;
      differs = differs || a[size_t(q)].candidates != other[size_t(q)].candidates;
    }
    CHECK(same);
    CHECK(differs);
    CHECK_THROWS_AS(make_pools(10, 12, 0), Error);
    CHECK_THROWS_AS(make_pools(10, 1, 0), Error);
    CHECK_NOTHROW(make_pools(10, 11, 0));
  }

  TEST_CASE("rank, top-1 and MRR on a hand-made score matrix") {
    std::vector<double> s = {0.1, 0.9, 0.5};
    CHECK(true_rank(s, 1) == 1);
    CHECK(true_rank(s, 2) == 2);
    CHECK(true_rank(s, 0) == 3);
    std::vector<double> tie = {0.5, 0.5, 0.1};
    CHECK(true_rank(tie, 0) == 2);  // ties count against the true document
    CHECK(true_rank(tie, 1) == 2);
    std::vector<double> nan = {std::nan(""), 0.1};
    CHECK(true_rank(nan, 0) == 2);

    // Query q's true document is q. Pools over 4 documents, written by hand.
    std::vector<std::vector<double>> m = {
        {0.9, 0.1, 0.2, 0.3},   // q0: rank 1
        {0.8, 0.5, 0.1, 0.7},   // q1: 0.5 below 0.8 and 0.7 -> rank 3
        {0.1, 0.6, 0.4, 0.2},   // q2: below 0.6 -> rank 2
        {0.3, 0.3, 0.3, 0.3}};  // q3: all tied -> rank 4
    std::vector<RetrievalPool> pools(4);
    for (int64_t q = 0; q < 4; ++q) {
      pools[size_t(q)].query = q;
      pools[size_t(q)].candidates = {0, 1, 2, 3};
      pools[size_t(q)].target = q;
    }
    RetrievalScore r = score_pools(pools, 5, matrix_scorer(m));
    CHECK(r.pool_size == 5);
    CHECK(r.queries == 4);
    CHECK(r.top1 == doctest::Approx(0.25));
    CHECK(r.mrr == doctest::Approx((1 + 1.0 / 3 + 1.0 / 2 + 1.0 / 4) / 4));
    // Smaller pools: q1 against {1, 2} only is right.
    pools[1].candidates = {2, 1};
    pools[1].target = 1;
    r = score_pools(pools, 5, matrix_scorer(m));
    CHECK(r.top1 == doctest::Approx(0.5));
  }

  TEST_CASE("cosine scorer: identical embeddings retrieve themselves; scale does not matter") {
    Tensor e = randn({40, 6}, 3);
    Tensor scaled = mul(e, 5.0);
    auto pools = make_pools(40, 32, 1);
    RetrievalScore r = score_pools(pools, 32, cosine_scorer(e, scaled));
    CHECK(r.top1 == 1.0);
    CHECK(r.mrr == 1.0);
    std::vector<double> out(2);
    std::vector<int64_t> c = {0, 1};
    cosine_scorer(e, scaled)(0, c, out);
    CHECK(out[0] == doctest::Approx(1.0));
    CHECK(std::abs(out[1]) < 1.0);
  }

  TEST_CASE("tfidf scorer on pools") {
    std::vector<std::string> docs, queries;
    for (int i = 0; i < 40; ++i) {
      docs.push_back("document number w" + std::to_string(i) + " about topic t" + std::to_string(i % 7));
      queries.push_back("w" + std::to_string(i));
    }
    auto pools = make_pools(40, 32, 2);
    RetrievalScore r = score_pools(pools, 32, tfidf_scorer(queries, docs));
    CHECK(r.top1 == 1.0);
  }

  TEST_CASE("pad_batch: left and right padding, longest or fixed T") {
    std::vector<std::vector<int32_t>> seqs = {{1, 2, 3}, {4}, {5, 6}};
    std::vector<int64_t> rows = {0, 1, 2};
    PaddedBatch r = pad_batch(seqs, rows, 9, PadSide::right);
    CHECK(r.ids.shape() == Shape{3, 3});
    CHECK(r.ids.to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3, 4, 9, 9, 5, 6, 9});
    CHECK(r.lengths == std::vector<int64_t>{3, 1, 2});
    std::vector<int64_t> rows2 = {2, 1};
    PaddedBatch l = pad_batch(seqs, rows2, 9, PadSide::left, 4);
    CHECK(l.ids.to_vector<int32_t>() == std::vector<int32_t>{9, 9, 5, 6, 9, 9, 9, 4});
    CHECK_THROWS_AS(pad_batch(seqs, rows, 9, PadSide::left, 2), Error);
  }

  TEST_CASE("pool_hidden picks last / second-last / mean of the real tokens") {
    // hidden[b, t, d] = 100 b + 10 t + d
    const int64_t B = 2, T = 4, D = 3;
    std::vector<double> h(size_t(B * T * D));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) h[size_t((b * T + t) * D + d)] = 100.0 * b + 10.0 * t + d;
    Tensor hidden = from_vector(h, {B, T, D});
    PaddedBatch rb;
    rb.side = PadSide::right;
    rb.lengths = {3, 1};
    PaddedBatch lb = rb;
    lb.side = PadSide::left;
    // right: row 0 real t = 0..2, row 1 real t = 0.  left: row 0 t = 1..3, row 1 t = 3.
    check_close(pool_hidden(hidden, rb, EmbedPosition::last), {20, 21, 22, 100, 101, 102});
    check_close(pool_hidden(hidden, rb, EmbedPosition::second_last), {10, 11, 12, 100, 101, 102});
    check_close(pool_hidden(hidden, rb, EmbedPosition::mean), {10, 11, 12, 100, 101, 102});
    check_close(pool_hidden(hidden, lb, EmbedPosition::last), {30, 31, 32, 130, 131, 132});
    check_close(pool_hidden(hidden, lb, EmbedPosition::second_last), {20, 21, 22, 130, 131, 132});
    check_close(pool_hidden(hidden, lb, EmbedPosition::mean), {20, 21, 22, 130, 131, 132});
    PaddedBatch bad = rb;
    bad.lengths = {5, 1};
    CHECK_THROWS_AS(pool_hidden(hidden, bad, EmbedPosition::last), Error);
  }

  TEST_CASE("pool_hidden gradients") {
    PaddedBatch b;
    b.lengths = {3, 1, 2};
    for (PadSide side : {PadSide::right, PadSide::left}) {
      b.side = side;
      for (EmbedPosition p : {EmbedPosition::last, EmbedPosition::second_last, EmbedPosition::mean}) {
        CAPTURE(embed_position_name(p));
        check_grad([&](const std::vector<Tensor>& in) { return pool_hidden(in[0], b, p); }, {leaf64({3, 4, 5}, 11)});
        check_grad([&](const std::vector<Tensor>& in) { return pool_hidden(in[0], b, p); },
                   {leaf64_transposed({3, 4, 5}, 12)});
      }
    }
  }

  TEST_CASE("embedding a text does not depend on its batch (right padding; left padding to n_ctx)") {
    for (ModelKind kind : {ModelKind::masked_mixer, ModelKind::llama}) {
      CAPTURE(model_kind_name(kind));
      Generator gen(5);
      auto model = make_model(tiny_config(kind), gen, TensorOptions{DType::f64});
      std::vector<std::vector<int32_t>> seqs = {{3, 1, 4, 1, 5}, {9, 2}, {6}, {5, 3, 5}};
      for (PadSide side : {PadSide::right, PadSide::left}) {
        for (EmbedPosition p : {EmbedPosition::last, EmbedPosition::second_last, EmbedPosition::mean}) {
          CAPTURE(embed_position_name(p));
          CAPTURE(side == PadSide::left);
          EmbedOptions o;
          o.position = p;
          o.pad_side = side;
          o.pad_to_ctx = side == PadSide::left;
          o.batch_size = 3;
          Tensor all = embed_sequences(*model, seqs, kPad, o);
          REQUIRE(all.shape() == Shape{4, 8});
          o.batch_size = 1;
          Tensor alone = embed_sequences(*model, seqs, kPad, o);
          std::vector<float> a = all.to_vector<float>(), b = alone.to_vector<float>();
          for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-5));
          // With right padding the unpadded forward gives the same vector.
          if (side == PadSide::right) {
            NoGradGuard ng;
            const auto& s = seqs[0];
            Tensor ids = from_vector(s, {1, int64_t(s.size())});
            // Llama's embeddings are taken after its final RMSNorm (docs/paper.md E.2).
            Tensor h = model->final_norm(model->forward_embeddings(model->embed(ids), -1, false));  // [1, 5, 8]
            Tensor want;
            if (p == EmbedPosition::last) want = h.select(1, 4);
            else if (p == EmbedPosition::second_last) want = h.select(1, 3);
            else want = mean(h, {1});
            std::vector<double> w = want.contiguous().to_vector<double>();
            for (size_t i = 0; i < w.size(); ++i) CHECK(a[i] == doctest::Approx(w[i]).epsilon(1e-5));
            if (kind == ModelKind::llama && p != EmbedPosition::mean) {
              // One position through RMSNorm (weight 1 at init, eps 1e-6): the embedding's mean
              // square is m / (m + eps), m that of the raw last-block output (about 1e-3 here).
              Tensor raw = model->forward_embeddings(model->embed(ids), -1, false)
                               .select(1, p == EmbedPosition::last ? 4 : 3)
                               .contiguous();
              double m = 0, ms = 0;
              for (double v : raw.to_vector<double>()) m += v * v / 8;
              for (size_t i = 0; i < 8; ++i) ms += double(a[i]) * double(a[i]) / 8;
              CHECK(m < 0.5);  // far from unit scale: the norm did something
              CHECK(ms == doctest::Approx(m / (m + 1e-6)).epsilon(1e-5));
            }
          }
        }
      }
    }
  }

  TEST_CASE("InfoNCE: a training step lowers the loss; grouped and in-batch runs") {
    Generator gen(1);
    auto model = make_model(tiny_config(ModelKind::masked_mixer), gen);
    // Four pairs whose documents share tokens with their queries.
    std::vector<std::vector<int32_t>> q = {{1, 2}, {3, 4}, {5, 6}, {7, 8}};
    std::vector<std::vector<int32_t>> d = {{1, 2, 9, 1}, {3, 4, 10}, {5, 6, 5, 9, 6}, {7, 8, 10, 7}};
    InfoNceOptions o;
    o.embed.position = EmbedPosition::last;
    o.group_size = 5;       // the query + all four documents
    o.groups_per_step = 4;  // every query every step: the same loss function each step
    o.train.steps = 2;
    o.train.warmup_steps = 0;
    o.train.lr = 1e-2;
    o.temperature = 0.1;
    o.train.log_every = 1;
    std::vector<int64_t> logged;
    InfoNceStats st = train_info_nce(*model, q, d, kPad, o, [&](int64_t step, double) { logged.push_back(step); });
    REQUIRE(st.losses.size() == 2);
    CHECK(st.losses[1] < st.losses[0]);
    CHECK(logged == std::vector<int64_t>{1, 2});
    CHECK(st.first_loss == doctest::Approx(st.losses[0]));
    // The loss of one group, by hand: query 0 against documents {0, 1, 2, 3}, positive first.
    std::vector<int64_t> qi = {0};
    std::vector<std::vector<int64_t>> cands = {{0, 1, 2, 3}};
    Tensor l0 = info_nce_group_loss(*model, q, d, kPad, qi, cands, o);
    CHECK(l0.dim() == 0);
    CHECK(std::isfinite(l0.item()));
    o.train.steps = 20;
    st = train_info_nce(*model, q, d, kPad, o);
    CHECK(st.last_loss < st.first_loss);
    CHECK(info_nce_group_loss(*model, q, d, kPad, qi, cands, o).item() < l0.item());
    // In-batch negatives.
    InfoNceOptions ib = o;
    ib.in_batch = 4;
    ib.train.steps = 10;
    st = train_info_nce(*model, q, d, kPad, ib);
    CHECK(st.steps == 10);
    CHECK(st.last_loss < st.first_loss);
    // One epoch by default; too large groups are an error.
    InfoNceOptions ep = o;
    ep.train.steps = 0;
    ep.groups_per_step = 3;
    CHECK(train_info_nce(*model, q, d, kPad, ep).steps == 2);
    ep.group_size = 6;
    CHECK_THROWS_AS(train_info_nce(*model, q, d, kPad, ep), Error);
  }

  TEST_CASE("InfoNCE on the Trainer: a stopped and resumed run (new process, other init) is bitwise the whole run") {
    // Six pairs, groups of 4, two groups per step: three steps an epoch, so the run crosses
    // epochs (fresh order and groups) and the stop falls inside the second one.
    std::vector<std::vector<int32_t>> q = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 1}, {2, 7}};
    std::vector<std::vector<int32_t>> d = {{1, 2, 9}, {3, 4, 10}, {5, 6, 5}, {7, 8, 10}, {9, 1, 3}, {2, 7, 7}};
    InfoNceOptions o;
    o.embed.position = EmbedPosition::last;
    o.group_size = 4;
    o.groups_per_step = 2;
    o.train.steps = 8;
    o.train.warmup_steps = 2;
    o.train.lr = 1e-2;
    test::TempDir dir("mg_infonce_resume");
    auto weights = [](const Module& m) {
      std::vector<float> w;
      for (const auto& p : m.parameters()) {
        auto v = p.contiguous().to_vector<float>();
        w.insert(w.end(), v.begin(), v.end());
      }
      return w;
    };
    Generator g1(1);
    auto whole = make_model(tiny_config(ModelKind::masked_mixer), g1);
    InfoNceStats full = train_info_nce(*whole, q, d, kPad, o, nullptr, {dir.file("whole"), false, -1, "", false});
    Generator g2(1);
    auto part = make_model(tiny_config(ModelKind::masked_mixer), g2);
    InfoNceStats first = train_info_nce(*part, q, d, kPad, o, nullptr, {dir.file("split"), false, 5, "", false});
    CHECK(first.interrupted);
    Generator g3(77);
    auto again = make_model(tiny_config(ModelKind::masked_mixer), g3);
    InfoNceStats second = train_info_nce(*again, q, d, kPad, o, nullptr, {dir.file("split"), true, -1, "", false});
    CHECK(second.steps == 8);
    std::vector<double> joined = first.losses;
    joined.insert(joined.end(), second.losses.begin(), second.losses.end());
    CHECK(joined == full.losses);
    CHECK(weights(*again) == weights(*whole));
  }

  TEST_CASE("embed positions parse; pair sets load, malformed files name the record") {
    CHECK(parse_embed_position("-2") == EmbedPosition::second_last);
    CHECK(parse_embed_position("second-last") == EmbedPosition::second_last);
    CHECK(parse_embed_position("last") == EmbedPosition::last);
    CHECK(parse_embed_position("mean") == EmbedPosition::mean);
    CHECK_THROWS_AS(parse_embed_position("first"), Error);

    const std::string path =
        (fs::temp_directory_path() / ("mg_test_retrieval_" + std::to_string(::getpid()) + ".jsonl")).string();
    {
      std::ofstream f(path);
      f << "{\"query\": \"q one\", \"document\": \"doc one\"}\n";
      f << "{\"query\": \"q two\", \"document\": 7}\n";
    }
    try {
      load_pairs(path);
      FAIL("no error");
    } catch (const PairsError& e) {
      CHECK(std::string(e.what()).find(path + ":2") != std::string::npos);
    }
    {
      std::ofstream f(path);
      f << "{\"query\": \"q one\", \"document\": \"doc one\"}\n";
      f << "{\"query\": \"q two\", \"document\": \"doc two\", \"id\": \"x\"}\n";
    }
    auto pairs = load_pairs(path);
    REQUIRE(pairs.size() == 2);
    CHECK(pairs[1].id == "x");
    fs::remove(path);
    CHECK_THROWS_AS(load_pairs(path), Error);
  }
}

TEST_SUITE("retrieval frozen embeddings") {
  TEST_CASE("RetrievalMixer: scores [B, c-1], every row sees every other (no mask), gradients") {
    Generator gen(3);
    RetrievalMixer m(4, 2, 5, gen, TensorOptions{DType::f64});
    CHECK(m.samples() == 5);
    Tensor x = randn({2, 5, 4}, 9, TensorOptions{DType::f64});
    Tensor s = m.forward(x);
    REQUIRE(s.shape() == Shape{2, 4});
    // Changing the LAST candidate moves the FIRST candidate's score: mixing is bidirectional.
    std::vector<double> v = x.to_vector<double>();
    v[size_t(4 * 4)] += 1.0;  // batch 0, row 4, feature 0
    Tensor s2 = m.forward(from_vector(v, {2, 5, 4}));
    CHECK(s2.to_vector<double>()[0] != doctest::Approx(s.to_vector<double>()[0]));
    CHECK(s2.to_vector<double>()[4] == doctest::Approx(s.to_vector<double>()[4]));  // other batch row unchanged
    check_grad([&](const std::vector<Tensor>& in) { return m.forward(in[0]); }, {leaf64({2, 5, 4}, 4)});
    CHECK_THROWS_AS(m.forward(randn({2, 6, 4}, 1, TensorOptions{DType::f64})), Error);
  }

  TEST_CASE("frozen retrieval learns noisy copies; evaluation arithmetic matches score_pools") {
    // Documents are the queries plus noise: a learnable (cosine-like) matching.
    const int64_t n = 512, d = 8, c = 8;
    Tensor q = randn({n, d}, 21);
    Tensor docs = add(q, mul(randn({n, d}, 22), 0.3));
    Tensor tq = randn({40, d}, 23);
    Tensor td = add(tq, mul(randn({40, d}, 24), 0.3));
    Generator gen(2);
    RetrievalMixer m(d, 2, c, gen);
    auto before = evaluate_frozen_retrieval(m, tq, td, make_pools(40, c, 5));
    FrozenRetrievalOptions o;
    o.pool_size = c;
    o.depth = 2;
    o.train.batch_size = 16;
    o.train.steps = 600;
    o.train.lr = 1e-2;
    o.train.warmup_steps = 10;
    o.train.log_every = 50;
    FrozenRetrievalResult r = train_frozen_retrieval(m, q, docs, tq, td, o, 5);
    REQUIRE(r.losses.size() == 600);
    CHECK(r.train_loss < std::log(double(c - 1)) * 0.7);
    CHECK(r.test_loss < before.first);
    CHECK(r.test.top1 > before.second.top1);
    CHECK(r.test.top1 > 0.5);
    // evaluate_frozen_retrieval's top-1 / MRR equal score_pools with the model as the scorer.
    auto pools = make_pools(40, c, 5);
    auto mine = evaluate_frozen_retrieval(m, tq, td, pools, 7);
    CHECK(mine.first == doctest::Approx(r.test_loss));
    PoolScorer via_model = [&](int64_t qi, std::span<const int64_t> cands, std::span<double> out) {
      std::vector<int64_t> rows = {qi};
      rows.insert(rows.end(), cands.begin(), cands.end());
      std::vector<float> x;
      for (size_t k = 0; k < rows.size(); ++k) {
        Tensor src = k == 0 ? tq : td;
        std::vector<float> row = src.select(0, rows[k]).contiguous().to_vector<float>();
        x.insert(x.end(), row.begin(), row.end());
      }
      NoGradGuard ng;
      std::vector<float> s = m.forward(from_vector(x, {1, c, d})).contiguous().to_vector<float>();
      for (size_t k = 0; k < out.size(); ++k) out[k] = s[k];
    };
    // One pool at a time through the model, ranked by true_rank.
    RetrievalScore ref;
    for (const auto& p : pools) {
      std::vector<double> s(p.candidates.size());
      via_model(p.query, p.candidates, s);
      const int64_t rank = true_rank(s, p.target);
      ref.top1 += rank == 1;
      ref.mrr += 1.0 / double(rank);
    }
    CHECK(mine.second.top1 == doctest::Approx(ref.top1 / 40));
    CHECK(mine.second.mrr == doctest::Approx(ref.mrr / 40));
  }
}
