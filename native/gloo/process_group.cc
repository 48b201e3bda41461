#include "process_group.h"

#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <gloo/common/error.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/tcp/address.h>

#include "tcp_store.h"

namespace crb::gloo_pg {

void Work::Finish(const Failure* failure) {
  std::vector<std::pair<crb_gloo_done_fn, void*>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    done_ = true;
    if (failure) {
      failed_ = true;
      failure_ = *failure;
    }
    callbacks.swap(callbacks_);
  }
  cv_.notify_all();
  for (auto& [fn, user] : callbacks) fn(user);
}

bool Work::Wait(Failure* failure) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return done_; });
  if (failed_) *failure = failure_;
  return !failed_;
}

bool Work::Completed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void Work::OnDone(crb_gloo_done_fn fn, void* user) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!done_) {
      callbacks_.emplace_back(fn, user);
      return;
    }
  }
  fn(user);
}

namespace {

std::string Seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", double(ms.count()) / 1000.0);
  return buf;
}

std::string RankPrefix(int rank, int size) {
  return "rank " + std::to_string(rank) + " of " + std::to_string(size);
}

// gloo's messages start with "[file.cc:line] "; users need the rest.
std::string StripSourceLocation(std::string text) {
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find("] ");
    if (close != std::string::npos && text.find(".cc:") < close) text.erase(0, close + 2);
  }
  return text;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// Where this rank's gloo device listens: GLOO_SOCKET_IFNAME's interface, else loopback when the
// TCP store is on loopback (every rank is on this machine), else this host's name if it resolves,
// else loopback.
::gloo::transport::tcp::attr DeviceAttr(const crb_gloo_options& o) {
  ::gloo::transport::tcp::attr attr;
  if (const char* iface = std::getenv("GLOO_SOCKET_IFNAME"); iface && *iface) {
    attr.iface = iface;
    return attr;
  }
  if (o.store == CRB_GLOO_STORE_TCP && IsLoopback(o.host)) {
    attr.hostname = "127.0.0.1";
    return attr;
  }
  char name[256] = {0};
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::gethostname(name, sizeof name - 1) == 0 && ::getaddrinfo(name, nullptr, &hints, &found) == 0) {
    ::freeaddrinfo(found);
    attr.hostname = name;
  } else {
    attr.hostname = "127.0.0.1";
  }
  return attr;
}

// The text gloo's TCP pairs print for each peer ("[127.0.0.1]:41235"), read back from what
// connectFullMesh stored: key "<r>" holds rank r's pair addresses, ours at slot (rank < r ? rank
// : rank - 1). (Debian's gloo headers cannot include tcp/pair.h, which would give peer().)
// Best effort: a key that is not there leaves that peer unnamed.
std::vector<std::pair<std::string, int>> PeerAddresses(::gloo::rendezvous::Store& store, int rank, int size) {
  std::vector<std::pair<std::string, int>> peers;
  for (int r = 0; r < size; r++) {
    if (r == rank) continue;
    try {
      const std::string key = std::to_string(r);
      store.wait({key}, std::chrono::milliseconds(1));
      std::vector<char> all = store.get(key);
      const size_t each = all.size() / size_t(size - 1);
      const size_t slot = size_t(rank < r ? rank : rank - 1);
      std::vector<char> mine(all.begin() + slot * each, all.begin() + (slot + 1) * each);
      peers.emplace_back(::gloo::transport::tcp::Address(mine).str(), r);
    } catch (const std::exception&) {
      // this peer stays unnamed in error messages
    }
  }
  return peers;
}

}  // namespace

std::unique_ptr<ProcessGroup> ProcessGroup::Create(const crb_gloo_options& o) {
  const std::chrono::milliseconds timeout(o.timeout_ms);
  std::unique_ptr<ProcessGroup> pg(new ProcessGroup(o.rank, o.world_size, timeout));
  const std::string who = RankPrefix(o.rank, o.world_size);
  const bool tcp = o.store == CRB_GLOO_STORE_TCP;
  const std::string where = tcp ? std::string(o.host) + ":" + std::to_string(o.port)
                                : std::string("the file store ") + o.path;
  auto fail = [&](crb_gloo_status code, const std::string& text) {
    return Failure{code, "rendezvous", "rendezvous: " + who + ": " + text, -1};
  };

  try {
    pg->device_ = ::gloo::transport::tcp::CreateDevice(DeviceAttr(o));
  } catch (const std::exception& e) {
    throw fail(CRB_GLOO_ERR_IO, "cannot create gloo's TCP device: " + StripSourceLocation(e.what()));
  }

  try {
    if (tcp) {
      pg->store_ = std::make_unique<TcpStore>(o.host, o.port, o.rank == 0, timeout);
    } else {
      ::mkdir(o.path, 0777);  // the first rank makes it; an existing one is fine
      pg->store_ = std::make_unique<::gloo::rendezvous::FileStore>(o.path);
    }
  } catch (const StoreTimeout& e) {
    throw fail(CRB_GLOO_ERR_TIMEOUT, "rank 0 did not start its store within " + Seconds(timeout) + ": " + e.what());
  } catch (const std::exception& e) {
    throw fail(CRB_GLOO_ERR_IO, "cannot use " + where + ": " + StripSourceLocation(e.what()));
  }
  pg->prefixed_ = std::make_unique<::gloo::rendezvous::PrefixStore>(o.prefix && *o.prefix ? o.prefix : "crb",
                                                                      *pg->store_);

  // Every rank announces itself, then waits for all the others, so a missing rank is named
  // (gloo's own full-mesh connect would only time out on the first one it waits for).
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<int> missing;
  try {
    pg->prefixed_->set("joined/" + std::to_string(o.rank), {'1'});
    for (int r = 0; r < o.world_size; r++) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      try {
        pg->prefixed_->wait({"joined/" + std::to_string(r)}, std::max(left, std::chrono::milliseconds(1)));
      } catch (const StoreTimeout&) {
        missing.push_back(r);
      } catch (const ::gloo::IoException&) {  // FileStore's timeout
        missing.push_back(r);
      }
    }
  } catch (const std::exception& e) {
    throw fail(CRB_GLOO_ERR_IO, "the store at " + where + " failed: " + StripSourceLocation(e.what()));
  }
  if (!missing.empty()) {
    std::string ranks;
    for (size_t i = 0; i < missing.size(); i++) ranks += (i ? ", " : "") + std::to_string(missing[i]);
    Failure f;
    f.code = CRB_GLOO_ERR_TIMEOUT;
    f.op = "rendezvous";
    f.peer = missing[0];
    f.message = "rendezvous: " + std::string(missing.size() == 1 ? "rank " : "ranks ") + ranks + " of " +
                std::to_string(o.world_size) + " did not join within " + Seconds(timeout) + " at " + where +
                " (seen from rank " + std::to_string(o.rank) + ")";
    throw f;
  }

  try {
    auto context = std::make_shared<::gloo::rendezvous::Context>(o.rank, o.world_size);
    context->setTimeout(timeout);
    context->connectFullMesh(*pg->prefixed_, pg->device_);
    pg->context_ = context;
  } catch (const std::exception& e) {
    throw fail(CRB_GLOO_ERR_IO, "connecting to the other ranks failed: " + StripSourceLocation(e.what()));
  }
  pg->peers_ = PeerAddresses(*pg->prefixed_, o.rank, o.world_size);
  ProcessGroup* self = pg.get();
  pg->worker_ = std::thread([self] { self->Loop(); });
  return pg;
}

ProcessGroup::~ProcessGroup() { Shutdown(); }

std::shared_ptr<Work> ProcessGroup::Enqueue(std::string op, std::string what, std::function<void(uint32_t)> run) {
  auto work = std::make_shared<Work>(std::move(op), std::move(what), rank_, size_, std::move(run));
  Failure refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && !broken_) {
      queue_.push_back(work);
      cv_.notify_one();
      return work;
    }
    refused = RefusalLocked(*work);
  }
  work->Finish(&refused);
  return work;
}

void ProcessGroup::Shutdown() {
  std::deque<std::shared_ptr<Work>> dropped;
  std::vector<Failure> refusals;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
    dropped.swap(queue_);
    for (auto& w : dropped) refusals.push_back(RefusalLocked(*w));
  }
  cv_.notify_all();
  for (size_t i = 0; i < dropped.size(); i++) dropped[i]->Finish(&refusals[i]);
  if (worker_.joinable()) worker_.join();
  // Close the pairs and the store now, so peers see this rank leave.
  context_.reset();
  device_.reset();
  prefixed_.reset();
  store_.reset();
}

std::string ProcessGroup::Prefix(const Work& work) const {
  return work.what() + " on " + RankPrefix(rank_, size_) + ": ";
}

Failure ProcessGroup::RefusalLocked(const Work& work) const {
  if (stopping_) return Failure{CRB_GLOO_ERR_DESTROYED, work.op(), Prefix(work) + "process group destroyed", -1};
  return Failure{first_failure_.code, work.op(),
                 Prefix(work) + "process group unusable after an earlier failure: " + first_failure_.message,
                 first_failure_.peer};
}

Failure ProcessGroup::Describe(const Work& work, const std::exception& e) const {
  Failure f;
  f.op = work.op();
  std::string text = StripSourceLocation(e.what());
  // Name the peer behind the address gloo printed. The side that accepted a pair's connection
  // prints the peer's ephemeral port, not its listening address: with two ranks the peer is
  // still the other one.
  for (const auto& [address, rank] : peers_) {
    size_t at = text.find(address);
    if (at == std::string::npos) continue;
    f.peer = rank;
    text.replace(at, address.size(), "rank " + std::to_string(rank) + " (" + address + ")");
    break;
  }
  const size_t open = text.find('[');
  if (f.peer < 0 && size_ == 2 && open != std::string::npos && dynamic_cast<const ::gloo::IoException*>(&e)) {
    f.peer = 1 - rank_;
    text.insert(open, "rank " + std::to_string(f.peer) + " ");
  }
  const bool timed_out = text.find("Timed out") != std::string::npos || text.find("timeout") != std::string::npos;
  if (timed_out) f.code = CRB_GLOO_ERR_TIMEOUT;
  else if (dynamic_cast<const ::gloo::IoException*>(&e)) f.code = CRB_GLOO_ERR_IO;
  else f.code = CRB_GLOO_ERR_INTERNAL;
  if (!text.empty()) text[0] = char(std::tolower(static_cast<unsigned char>(text[0])));
  f.message = Prefix(work) + text +
              (timed_out ? " (timeout " + Seconds(timeout_) + ")" : "");
  return f;
}

void ProcessGroup::Loop() {
  for (;;) {
    std::shared_ptr<Work> work;
    uint32_t tag;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      work = std::move(queue_.front());
      queue_.pop_front();
      tag = next_tag_++;
    }
    bool ok = true;
    Failure failure;
    try {
      work->Run(tag);
    } catch (const std::exception& e) {
      ok = false;
      failure = Describe(*work, e);
    }
    if (!ok) {
      // gloo's pairs do not recover from a failed collective: later works fail at once.
      std::deque<std::shared_ptr<Work>> dropped;
      std::vector<Failure> refusals;
      {
        std::lock_guard<std::mutex> lock(mu_);
        broken_ = true;
        first_failure_ = failure;
        dropped.swap(queue_);
        for (auto& w : dropped) refusals.push_back(RefusalLocked(*w));
      }
      work->Finish(&failure);
      for (size_t i = 0; i < dropped.size(); i++) dropped[i]->Finish(&refusals[i]);
      continue;
    }
    work->Finish(nullptr);
  }
}

}  // namespace crb::gloo_pg
