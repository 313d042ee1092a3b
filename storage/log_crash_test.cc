// Randomized crash test of the partition log on SimFileSystem.
//
// Each seed builds a random workload (appends of random batches, some compressed; flushes;
// leader-epoch changes; truncations; injected I/O faults) and crashes the "process" at random
// points, including in the middle of an operation (an injected fault stops it half done). After
// every crash the log is reopened, sometimes from a checkpointed recovery point, and checked:
//   - every batch acknowledged before the last successful flush is served intact;
//   - what is served is exactly a prefix of the acknowledged batches, byte for byte: nothing
//     after a torn batch, no garbage, no gaps;
//   - the leader-epoch cache agrees with the epochs of the surviving batches and has no entry at
//     or past the log end;
//   - the idempotent producers' state (some appends carry producer ids, sequences, epoch bumps,
//     and retries of batches already written, which must be answered with their offsets and not
//     written) equals the state a replay of the surviving batches gives, however the crash
//     left the producer snapshots written at segment rolls.
//
// Seeds: GANNET_SEED=N replays one seed; GANNET_CRASH_SEEDS=N sets how many run (default 1000),
// starting at GANNET_SEED_BASE (default 1). A failure prints the seed to replay.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "storage/log.h"
#include "storage/record_batch.h"
#include "storage/sim_file_system.h"

namespace gannet::storage {
namespace {

struct ModelBatch {
  int64_t base_offset;
  int64_t next_offset;
  int32_t epoch;
  std::string bytes;  // as stored (offsets and epoch stamped)
};

int64_t env_int(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v ? std::strtoll(v, nullptr, 10) : def;
}

std::string random_batch(std::mt19937_64& rng, int64_t now_ms, BatchOptions o = {}) {
  static const Compression kCodecs[] = {Compression::kNone, Compression::kNone, Compression::kLz4,
                                        Compression::kZstd, Compression::kSnappy};
  o.compression = kCodecs[rng() % 5];
  RecordBatchBuilder b(o);
  int n = 1 + static_cast<int>(rng() % 8);
  for (int i = 0; i < n; ++i) {
    std::string value(rng() % 300, 'a' + static_cast<char>(rng() % 26));
    std::string key = "k" + std::to_string(rng() % 50);
    b.add(now_ms + static_cast<int64_t>(rng() % 1000), key, value);
  }
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

// Splits a read's bytes into whole batches; fails the test on anything malformed.
std::vector<std::string> split_batches(const std::string& bytes) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
    auto size = peek_batch_size(p, bytes.size() - pos, 1 << 30);
    if (!size.ok() || pos + *size > bytes.size()) {
      ADD_FAILURE() << "served bytes hold a malformed batch at " << pos;
      return out;
    }
    EXPECT_TRUE(validate_batch(p, *size).ok()) << "served batch at " << pos << " fails its CRC";
    out.emplace_back(bytes.substr(pos, *size));
    pos += *size;
  }
  return out;
}

class CrashRun {
 public:
  CrashRun(uint64_t seed, bool trace) : seed_(seed), trace_(trace), rng_(seed) {
    config_.segment_bytes = 1024 + static_cast<int64_t>(rng_() % 8192);
    config_.index_interval_bytes = static_cast<int32_t>(rng_() % 1024);
    config_.flush_messages = (rng_() % 3 == 0) ? 1 + static_cast<int64_t>(rng_() % 20) : INT64_MAX;
    config_.retention_ms = -1;
  }

  void run() {
    open(std::nullopt);
    const int cycles = 2 + static_cast<int>(rng_() % 4);
    for (int c = 0; c < cycles && !::testing::Test::HasFailure(); ++c) {
      workload();
      crash_and_check();
    }
  }

 private:
  void open(std::optional<int64_t> recovery_point) {
    Log::Options o;
    o.fs = &fs_;
    o.clock = &clock_;
    o.config = config_;
    o.recovery_point = recovery_point;
    auto log = Log::open("/data/t-0", o);
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    log_ = std::move(log).value();
  }

  int64_t model_end() const { return model_.empty() ? start_ : model_.back().next_offset; }

  void workload() {
    if (rng_() % 3 == 0) {
      // A fault part way through some later operation: the log goes offline there, and the
      // "process" crashes at that point.
      static const SimFileSystem::Op kOps[] = {
          SimFileSystem::Op::kAppend, SimFileSystem::Op::kSync, SimFileSystem::Op::kSyncDir,
          SimFileSystem::Op::kRename, SimFileSystem::Op::kOpen, SimFileSystem::Op::kTruncate};
      fs_.inject_fault(kOps[rng_() % 6], static_cast<int>(rng_() % 40),
                       rng_() % 2 ? Errc::kIoError : Errc::kNoSpace, rng_() % 200);
    }
    const int ops = 5 + static_cast<int>(rng_() % 60);
    for (int i = 0; i < ops; ++i) {
      const int op = static_cast<int>(rng_() % 100);
      if (op < 70) {
        if (!append()) return;
      } else if (op < 88) {
        Status st = log_->flush();
        if (!st.ok()) {
          note("flush failed: " + st.error().to_string());
          return;
        }
        note("flush to " + std::to_string(model_end()));
        durable_ = model_end();
        if (rng_() % 2) checkpoint_ = log_->durable_offset();
      } else if (op < 93) {
        epoch_ += 1 + static_cast<int32_t>(rng_() % 2);
        if (rng_() % 2) {
          // As a broker taking the lead does: the epoch starts at the log end, in memory only
          // until its first batch is written.
          Status st = log_->epoch_cache().assign(epoch_, log_->log_end_offset(), /*persist=*/false);
          if (!st.ok()) return;
          note("lead epoch " + std::to_string(epoch_) + " from " + std::to_string(log_->log_end_offset()));
        }
      } else if (op < 95) {
        if (!truncate()) return;
      } else if (op < 97) {
        retry_last_batch();
      } else {
        clock_.advance_ms(static_cast<int64_t>(rng_() % 10'000));
      }
    }
  }

  bool append() {
    std::string bytes;
    const int n = 1 + static_cast<int>(rng_() % 3);
    // Half the appends come from one of three idempotent producers, in sequence from where the
    // log's state has it (a new producer starts anywhere), sometimes with a bumped epoch.
    BatchOptions o;
    if (rng_() % 2) {
      o.producer_id = 1 + static_cast<int64_t>(rng_() % 3);
      const ProducerStateTable state = log_->producer_state();
      const ProducerEntry* e = state.find(o.producer_id);
      o.producer_epoch = e ? e->epoch : 0;
      o.base_sequence = e ? e->batches.back().last_seq + 1 : static_cast<int32_t>(rng_() % 1000);
      if (rng_() % 8 == 0) {
        ++o.producer_epoch;
        o.base_sequence = 0;
      }
    }
    for (int i = 0; i < n; ++i) {
      bytes += random_batch(rng_, clock_.now_ms(), o);
      if (o.producer_id >= 0) o.base_sequence += record_count_of_last(bytes);
    }
    auto span = std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size());
    auto r = log_->append(span, epoch_);
    if (!r.ok()) {
      // Not acknowledged, but it may have reached the log (a failed flush after the write): a
      // later recovery may serve it, never anything else.
      maybe_ = parse_stamped(bytes);
      note("append failed: " + r.error().to_string());
      return false;
    }
    note("append " + std::to_string(r->base_offset) + ".." + std::to_string(r->last_offset) +
         " epoch " + std::to_string(epoch_) + ", segments " + std::to_string(log_->segment_count()));
    EXPECT_EQ(r->base_offset, model_end());
    for (auto& b : parse_stamped(bytes)) model_.push_back(std::move(b));
    if (config_.flush_messages != INT64_MAX && log_->durable_offset() >= model_end()) {
      durable_ = model_end();
    }
    return true;
  }

  // Records in the last batch of a buffer of batches.
  static int32_t record_count_of_last(const std::string& bytes) {
    size_t pos = 0;
    int32_t count = 0;
    while (pos < bytes.size()) {
      auto p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
      size_t size = *peek_batch_size(p, bytes.size() - pos, 1 << 30);
      count = RecordBatchView(p, size).record_count();
      pos += size;
    }
    return count;
  }

  // A producer retries its last batch (its answer was lost): answered with the original
  // offsets, nothing written.
  void retry_last_batch() {
    const ProducerStateTable state = log_->producer_state();
    for (const auto& [pid, e] : state.entries()) {
      const ProducerBatch& last = e.batches.back();
      for (const ModelBatch& b : model_) {
        if (b.base_offset != last.first_offset) continue;
        std::string bytes = b.bytes;
        const int64_t end = log_->log_end_offset();
        auto r = log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), epoch_);
        if (!r.ok()) {
          note("retry failed: " + r.error().to_string());
          return;
        }
        note("retry of producer " + std::to_string(pid) + "'s batch at " + std::to_string(last.first_offset));
        EXPECT_TRUE(r->duplicate) << "a retried batch was written again";
        EXPECT_EQ(r->base_offset, last.first_offset);
        EXPECT_EQ(r->last_offset, last.last_offset);
        EXPECT_EQ(log_->log_end_offset(), end);
        return;
      }
    }
  }

  // The producers' state a replay of the model's batches gives (epochs and batches; activity
  // times differ by design).
  std::map<int64_t, std::pair<int16_t, std::vector<ProducerBatch>>> replayed_state() const {
    ProducerStateTable t;
    for (const ModelBatch& b : model_) {
      RecordBatchView v(reinterpret_cast<const uint8_t*>(b.bytes.data()), b.bytes.size());
      t.update(ProducerBatchInfo::of(BatchInfo::of(v, 0, b.bytes.size())), 0);
    }
    return view(t);
  }
  static std::map<int64_t, std::pair<int16_t, std::vector<ProducerBatch>>> view(const ProducerStateTable& t) {
    std::map<int64_t, std::pair<int16_t, std::vector<ProducerBatch>>> out;
    for (const auto& [pid, e] : t.entries()) out[pid] = {e.epoch, e.batches};
    return out;
  }

  // The batches of an append buffer, as the log stamped them in place.
  std::vector<ModelBatch> parse_stamped(const std::string& bytes) {
    std::vector<ModelBatch> out;
    size_t pos = 0;
    while (pos < bytes.size()) {
      auto p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
      size_t size = *peek_batch_size(p, bytes.size() - pos, 1 << 30);
      RecordBatchView v(p, size);
      out.push_back({v.base_offset(), v.next_offset(), v.leader_epoch(), bytes.substr(pos, size)});
      pos += size;
    }
    return out;
  }

  bool truncate() {
    if (model_.empty()) return true;
    // Truncate to a batch boundary (what a follower's divergence check produces).
    size_t keep = rng_() % model_.size();
    int64_t to = model_[keep].base_offset;
    Status st = log_->truncate_to(to);
    // Even a truncation that failed half way may have cut the log: nothing at or past `to` is
    // promised any more (what is served must still be a prefix of the model).
    durable_ = std::min(durable_, to);
    checkpoint_ = std::min(checkpoint_, to);
    if (!st.ok()) {
      note("truncate to " + std::to_string(to) + " failed: " + st.error().to_string());
      return false;
    }
    note("truncate to " + std::to_string(to));
    model_.resize(keep);
    EXPECT_EQ(log_->log_end_offset(), model_end());
    EXPECT_EQ(view(log_->producer_state()), replayed_state()) << "producer state after truncating to " << to;
    durable_ = std::min(durable_, model_end());
    checkpoint_ = std::min(checkpoint_, model_end());
    return true;
  }

  void crash_and_check() {
    log_.reset();  // no I/O: a crashed process writes nothing more
    fs_.crash(rng_);
    const bool use_checkpoint = rng_() % 2 == 0;
    note("crash; reopen with recovery point " +
         (use_checkpoint ? std::to_string(checkpoint_) : std::string("none")));
    open(use_checkpoint ? std::optional<int64_t>(checkpoint_) : std::nullopt);
    note("recovered: log end " + std::to_string(log_->log_end_offset()) + ", segments " +
         std::to_string(log_->segment_count()));
    if (::testing::Test::HasFatalFailure()) return;

    std::string served;
    if (log_->log_end_offset() > log_->log_start_offset()) {
      auto r = log_->read(log_->log_start_offset(), 1 << 30);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      ASSERT_TRUE(r->copy_to(&served).ok());
    }
    std::vector<std::string> batches = split_batches(served);
    if (trace_) {
      std::string offsets;
      for (const auto& b : batches) {
        RecordBatchView v(reinterpret_cast<const uint8_t*>(b.data()), b.size());
        offsets += " " + std::to_string(v.base_offset()) + "-" + std::to_string(v.last_offset());
      }
      note("served batches:" + offsets);
    }
    // An unacknowledged append may have survived; past the model only its batches may appear.
    if (!maybe_.empty() && maybe_.front().base_offset == model_end()) {
      for (auto& b : maybe_) model_.push_back(std::move(b));
    }
    maybe_.clear();
    ASSERT_LE(batches.size(), model_.size()) << "more batches served than were ever appended";
    for (size_t i = 0; i < batches.size(); ++i) {
      ASSERT_EQ(batches[i], model_[i].bytes) << "served batch " << i << " differs from what was appended";
    }
    const int64_t end = batches.empty() ? start_ : model_[batches.size() - 1].next_offset;
    ASSERT_EQ(log_->log_end_offset(), end);
    ASSERT_GE(end, durable_) << "a flushed batch was lost (durable up to " << durable_
                             << ", log end after recovery " << end << ")";
    model_.resize(batches.size());
    // Recovery makes what it kept durable.
    durable_ = end;
    checkpoint_ = std::min(checkpoint_, end);
    ASSERT_EQ(log_->durable_offset(), end);

    auto& cache = log_->epoch_cache();
    for (const auto& e : cache.entries()) ASSERT_LT(e.start_offset, end) << "epoch entry past the log end";
    for (const auto& b : model_) {
      auto ep = cache.epoch_for_offset(b.base_offset);
      ASSERT_TRUE(ep.has_value()) << "no epoch for offset " << b.base_offset;
      ASSERT_EQ(*ep, b.epoch) << "epoch cache disagrees at offset " << b.base_offset;
    }
    ASSERT_EQ(view(log_->producer_state()), replayed_state())
        << "the recovered producer state is not what a replay of the surviving batches gives";
    // The log keeps working after recovery.
    ASSERT_TRUE(append());
  }

  // With GANNET_SEED set, every step is printed, to make a replay readable.
  void note(const std::string& what) {
    if (trace_) std::cout << "  [seed " << seed_ << "] " << what << std::endl;
  }

  const uint64_t seed_;
  const bool trace_;
  std::mt19937_64 rng_;
  SimFileSystem fs_;
  ManualClock clock_;
  LogConfig config_;
  std::unique_ptr<Log> log_;
  std::vector<ModelBatch> model_;
  std::vector<ModelBatch> maybe_;  // the last append, if it failed
  int64_t start_ = 0;
  int64_t durable_ = 0;     // every acknowledged batch below this was flushed
  int64_t checkpoint_ = 0;  // the last "checkpointed" recovery point
  int32_t epoch_ = 0;
};

TEST(LogCrash, RandomizedCrashesLoseNothingFlushed) {
  const int64_t single = env_int("GANNET_SEED", -1);
  const int64_t base = single >= 0 ? single : env_int("GANNET_SEED_BASE", 1);
  const int64_t count = single >= 0 ? 1 : env_int("GANNET_CRASH_SEEDS", 1000);
  std::cout << "log crash test: seeds " << base << ".." << base + count - 1
            << " (replay one with GANNET_SEED=N)" << std::endl;
  for (int64_t s = base; s < base + count; ++s) {
    CrashRun run(static_cast<uint64_t>(s), single >= 0);
    run.run();
    if (::testing::Test::HasFailure()) {
      std::cout << "FAILED seed " << s << ": replay with GANNET_SEED=" << s << std::endl;
      return;
    }
  }
}

}  // namespace
}  // namespace gannet::storage
