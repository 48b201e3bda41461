// A process group over gloo's TCP transport: rendezvous through a store (tcp_store.h or gloo's
// FileStore), then one worker thread that runs the group's collectives in submission order, so
// every rank issues them in the same order with the same tags.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/device.h>

#include "crb_gloo.h"

namespace crb::gloo_pg {

// What went wrong, as crb_gloo_error says it; thrown by ProcessGroup::Create.
struct Failure {
  crb_gloo_status code = CRB_GLOO_ERR_INTERNAL;
  std::string op;
  std::string message;
  int peer = -1;
};

// One collective: queued, then run by the worker, then done (ok or failed) exactly once.
class Work {
 public:
  Work(std::string op, std::string what, int rank, int size, std::function<void(uint32_t tag)> run)
      : op_(std::move(op)), what_(std::move(what)), rank_(rank), size_(size), run_(std::move(run)) {}

  const std::string& op() const { return op_; }
  const std::string& what() const { return what_; }  // "allReduce (float32, 10 elements)"
  int rank() const { return rank_; }  // of its group
  int size() const { return size_; }
  void Run(uint32_t tag) { run_(tag); }

  void Finish(const Failure* failure);
  // Blocks until done; the failure, if any, in *failure.
  bool Wait(Failure* failure);
  bool Completed() const;
  void OnDone(crb_gloo_done_fn fn, void* user);

 private:
  const std::string op_, what_;
  const int rank_, size_;
  std::function<void(uint32_t)> run_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool failed_ = false;
  Failure failure_;
  std::vector<std::pair<crb_gloo_done_fn, void*>> callbacks_;
};

class ProcessGroup {
 public:
  // Blocks until every rank joined; throws Failure.
  static std::unique_ptr<ProcessGroup> Create(const crb_gloo_options& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  const std::shared_ptr<::gloo::Context>& context() const { return context_; }

  // Queues `run` (called on the worker with the op's tag). Fails at once when destroyed or
  // broken.
  std::shared_ptr<Work> Enqueue(std::string op, std::string what, std::function<void(uint32_t tag)> run);
  // Idempotent; see pg_shutdown in crb_gloo.h.
  void Shutdown();

 private:
  ProcessGroup(int rank, int size, std::chrono::milliseconds timeout) : rank_(rank), size_(size), timeout_(timeout) {}
  void Loop();
  std::string Prefix(const Work& work) const;  // "allReduce (...) on rank 0 of 2: "
  // Why `work` cannot run now (destroyed, or broken); mu_ held.
  Failure RefusalLocked(const Work& work) const;
  Failure Describe(const Work& work, const std::exception& e) const;

  const int rank_, size_;
  const std::chrono::milliseconds timeout_;
  // Destroyed bottom-up: the context (pairs) before the device, the store last.
  std::unique_ptr<::gloo::rendezvous::Store> store_;
  std::unique_ptr<::gloo::rendezvous::PrefixStore> prefixed_;
  std::shared_ptr<::gloo::transport::Device> device_;
  std::shared_ptr<::gloo::Context> context_;
  // The address gloo prints for each peer's end of our pair, and that peer's rank.
  std::vector<std::pair<std::string, int>> peers_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Work>> queue_;
  bool stopping_ = false;
  bool broken_ = false;
  Failure first_failure_;
  uint32_t next_tag_ = 0;
  std::thread worker_;
};

}  // namespace crb::gloo_pg
