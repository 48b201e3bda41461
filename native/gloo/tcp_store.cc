#include "tcp_store.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

namespace crb::gloo_pg {

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText(int e) { return std::strerror(e); }

// All of `n` bytes, or false (peer closed, error, or `deadline` passed).
bool ReadFull(int fd, void* buf, size_t n, Clock::time_point deadline) {
  auto* p = static_cast<char*>(buf);
  while (n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, int(std::min<long long>(left, 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    ssize_t got = ::recv(fd, p, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= size_t(got);
  }
  return true;
}

bool WriteFull(int fd, const void* buf, size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n) {
    ssize_t put = ::send(fd, p, n, MSG_NOSIGNAL);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    p += put;
    n -= size_t(put);
  }
  return true;
}

// Long enough for any request: the server threads block until the client speaks or leaves.
constexpr auto kForever = std::chrono::hours(24 * 365);

}  // namespace

// Serves the map; one thread per client (a world is a handful of ranks), one accepting.
class TcpStoreServer {
 public:
  explicit TcpStoreServer(int port) {
    Fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    bool v6 = bool(fd);
    if (!v6) fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error("socket: " + ErrnoText(errno));
    int one = 1, zero = 0;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (v6) {
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 clients too
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_any;
      a.sin6_port = htons(uint16_t(port));
      rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      a.sin_port = htons(uint16_t(port));
      rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0 || ::listen(fd.get(), 128) != 0)
      throw std::runtime_error("cannot listen on port " + std::to_string(port) + ": " + ErrnoText(errno));
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe: " + ErrnoText(errno));
    wake_read_ = Fd(pipefd[0]);
    wake_write_ = Fd(pipefd[1]);
    listen_ = std::move(fd);
    accepter_ = std::thread([this] { Accept(); });
  }

  ~TcpStoreServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      for (auto& c : clients_) ::shutdown(c.get(), SHUT_RDWR);  // wakes their blocking reads
    }
    char b = 0;
    (void)!::write(wake_write_.get(), &b, 1);
    accepter_.join();
    for (auto& t : threads_) t.join();
  }

  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

 private:
  void Accept() {
    for (;;) {
      pollfd pfds[2] = {{listen_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
      if (::poll(pfds, 2, -1) < 0 && errno != EINTR) return;
      if (pfds[1].revents) return;
      if (!(pfds[0].revents & POLLIN)) continue;
      int c = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        ::close(c);
        return;
      }
      clients_.emplace_back(c);
      threads_.emplace_back([this, c] { Serve(c); });
    }
  }

  void Serve(int fd) {
    const auto deadline = Clock::now() + kForever;
    for (;;) {
      char cmd;
      uint32_t klen;
      if (!ReadFull(fd, &cmd, 1, deadline) || !ReadFull(fd, &klen, 4, deadline)) return;
      std::string key(klen, '\0');
      if (!ReadFull(fd, key.data(), klen, deadline)) return;
      if (cmd == 'S') {
        uint32_t vlen;
        if (!ReadFull(fd, &vlen, 4, deadline)) return;
        std::vector<char> value(vlen);
        if (!ReadFull(fd, value.data(), vlen, deadline)) return;
        {
          std::lock_guard<std::mutex> lock(mu_);
          map_[key] = std::move(value);
        }
        const char ok = 0;
        if (!WriteFull(fd, &ok, 1)) return;
      } else if (cmd == 'G') {
        std::vector<char> reply(1, 0);
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto it = map_.find(key);
          if (it != map_.end()) {
            reply[0] = 1;
            const uint32_t n = uint32_t(it->second.size());
            reply.insert(reply.end(), reinterpret_cast<const char*>(&n), reinterpret_cast<const char*>(&n) + 4);
            reply.insert(reply.end(), it->second.begin(), it->second.end());
          }
        }
        if (!WriteFull(fd, reply.data(), reply.size())) return;
      } else {
        return;  // not our protocol: drop the client
      }
    }
  }

  Fd listen_, wake_read_, wake_write_;
  std::thread accepter_;
  std::mutex mu_;
  bool stopping_ = false;
  std::vector<Fd> clients_;
  std::vector<std::thread> threads_;
  std::map<std::string, std::vector<char>> map_;
};

TcpStore::TcpStore(const std::string& host, int port, bool serve, std::chrono::milliseconds timeout)
    : where_(host + ":" + std::to_string(port)), timeout_(timeout) {
  if (serve) server_ = std::make_unique<TcpStoreServer>(port);
  const auto deadline = Clock::now() + timeout;
  std::string last = "no attempt";
  for (;;) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    int gai = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    if (gai != 0) {
      last = std::string("cannot resolve ") + host + ": " + gai_strerror(gai);
    } else {
      std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
      for (addrinfo* ai = found; ai; ai = ai->ai_next) {
        Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
        if (!fd) continue;
        if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
          int one = 1;
          ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn_ = std::move(fd);
          return;
        }
        last = ErrnoText(errno);
      }
    }
    if (Clock::now() >= deadline)
      throw StoreTimeout("could not reach the store at " + where_ + " (" + last + ")", {});
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TcpStore::~TcpStore() = default;

void TcpStore::Request(char cmd, const std::string& key, const std::vector<char>* value) {
  std::vector<char> msg(1, cmd);
  const uint32_t klen = uint32_t(key.size());
  msg.insert(msg.end(), reinterpret_cast<const char*>(&klen), reinterpret_cast<const char*>(&klen) + 4);
  msg.insert(msg.end(), key.begin(), key.end());
  if (value) {
    const uint32_t vlen = uint32_t(value->size());
    msg.insert(msg.end(), reinterpret_cast<const char*>(&vlen), reinterpret_cast<const char*>(&vlen) + 4);
    msg.insert(msg.end(), value->begin(), value->end());
  }
  if (!WriteFull(conn_.get(), msg.data(), msg.size()))
    throw std::runtime_error("the store at " + where_ + " closed the connection");
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) {
  Request('S', key, &data);
  char ok;
  if (!ReadFull(conn_.get(), &ok, 1, Clock::now() + timeout_))
    throw std::runtime_error("the store at " + where_ + " did not answer set(" + key + ")");
}

bool TcpStore::TryGet(const std::string& key, std::vector<char>* value) {
  Request('G', key, nullptr);
  const auto deadline = Clock::now() + timeout_;
  char found;
  uint32_t n = 0;
  if (!ReadFull(conn_.get(), &found, 1, deadline) || (found && !ReadFull(conn_.get(), &n, 4, deadline)))
    throw std::runtime_error("the store at " + where_ + " did not answer get(" + key + ")");
  if (!found) return false;
  value->resize(n);
  if (!ReadFull(conn_.get(), value->data(), n, deadline))
    throw std::runtime_error("the store at " + where_ + " did not answer get(" + key + ")");
  return true;
}

std::vector<char> TcpStore::get(const std::string& key) {
  wait({key}, timeout_);
  std::vector<char> value;
  TryGet(key, &value);
  return value;
}

void TcpStore::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<std::string> missing = keys;
  std::vector<char> ignored;
  for (;;) {
    std::vector<std::string> still;
    for (const auto& k : missing)
      if (!TryGet(k, &ignored)) still.push_back(k);
    missing.swap(still);
    if (missing.empty()) return;
    if (Clock::now() >= deadline) throw StoreTimeout("keys never set in the store at " + where_, missing);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace crb::gloo_pg
