// A TCP key-value store for rendezvous (gloo::rendezvous::Store: set/get/wait), like PyTorch's
// TCPStore: rank 0 serves it on every interface at `port`; every rank, rank 0 included, is a
// client of it at host:port. Only rendezvous uses it, so the protocol is small and blocking:
//   request  u8 cmd, u32 key length, key, [cmd 'S': u32 value length, value]
//   response 'S': u8 0; 'G': u8 found, [u32 length, value]
// wait() polls 'G'. Sizes are little-endian (every supported host is).
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

namespace crb::gloo_pg {

// A wait that ran out of time; `missing` are the keys that never appeared.
struct StoreTimeout : std::runtime_error {
  StoreTimeout(const std::string& what, std::vector<std::string> missing)
      : std::runtime_error(what), missing(std::move(missing)) {}
  std::vector<std::string> missing;
};

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

class TcpStoreServer;

class TcpStore : public ::gloo::rendezvous::Store {
 public:
  // Rank 0 (`serve`) listens first; then connects, retrying until `timeout`. Throws
  // std::runtime_error (cannot listen) or StoreTimeout (no server within the timeout).
  TcpStore(const std::string& host, int port, bool serve, std::chrono::milliseconds timeout);
  ~TcpStore() override;

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  bool TryGet(const std::string& key, std::vector<char>* value);
  void Request(char cmd, const std::string& key, const std::vector<char>* value);

  std::string where_;  // "host:port", for messages
  std::chrono::milliseconds timeout_;
  std::unique_ptr<TcpStoreServer> server_;  // rank 0 only
  Fd conn_;
};

}  // namespace crb::gloo_pg
