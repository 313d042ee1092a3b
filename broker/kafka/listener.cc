#include "broker/kafka/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstring>
#include <deque>
#include <unordered_map>

#include <glog/logging.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace gannet::broker::kafka {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What identifies the version of the TLS files on disk.
std::string file_stamp(const TlsOptions& o) {
  std::string out;
  for (const std::string* path : {&o.keystore_location, &o.truststore_location}) {
    struct stat st {};
    if (path->empty() || ::stat(path->c_str(), &st) != 0) {
      out += "-;";
      continue;
    }
    out += std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
           std::to_string(st.st_size) + ";";
  }
  return out;
}

std::string peer_ip(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof(buf));
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

// A listening socket on host:port (non-blocking); returns the fd and the bound port.
Result<std::pair<int, int>, std::string> listen_on(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string h = host.empty() ? "0.0.0.0" : host;
  if (int rc = getaddrinfo(h.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
    return "cannot resolve " + h + ": " + gai_strerror(rc);
  }
  std::string why = "no address for " + h;
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
      why = "cannot listen on " + h + ":" + std::to_string(port) + ": " + std::strerror(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    const int bound = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port)
                                                : ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
    freeaddrinfo(res);
    return std::make_pair(fd, bound);
  }
  freeaddrinfo(res);
  return why;
}

}  // namespace

// One connection. `mu_` guards `slots` only; the rest is its loop's.
struct KafkaListener::Connection {
  struct Slot {
    bool done = false;
    Answer answer;
  };
  int fd = -1;
  SSL* ssl = nullptr;            // SSL and SASL_SSL endpoints
  bool tls_ready = false;        // the TLS handshake has finished
  bool tls_want_write = false;   // an SSL_read must write before it can go on (EPOLLOUT)
  uint32_t events = 0;           // what epoll watches now
  std::string ip;
  ConnectionInfo info;
  std::string in;             // bytes read, not yet a whole frame
  uint64_t first_seq = 0;     // with mu: the sequence number of slots.front()
  std::deque<Slot> slots;     // with mu: one per request not yet written, in request order
  std::deque<Chunk> out;      // answers being written
  size_t out_offset = 0;      // into out.front()
  size_t out_bytes = 0;
  bool closing = false;       // write what is queued, then close
  bool reading = true;        // EPOLLIN is on
  bool writing = false;       // EPOLLOUT is on
  int64_t last_active_ms = 0;
  std::mutex mu;
};

class KafkaListener::IoThread : public std::enable_shared_from_this<IoThread> {
 public:
  IoThread(KafkaListener* l, int index) : l_(l), index_(index) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
  }
  ~IoThread() {
    ::close(epfd_);
    ::close(wakefd_);
  }

  void add_listen_fd(int fd, size_t index) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag | index;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }
  void start() {
    auto self = shared_from_this();
    thread_ = std::thread([self] { self->loop(); });
  }
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    wake();
    if (thread_.joinable()) thread_.join();
  }
  // From the accepting loop: a new connection for this loop.
  void hand_over(std::shared_ptr<Connection> c) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) {
        if (c->ssl) SSL_free(c->ssl);
        ::close(c->fd);
        l_->release(c->ip);
        return;
      }
      incoming_.push_back(std::move(c));
    }
    wake();
  }
  // From any thread: request `seq` of `c` has its answer.
  void complete(const std::weak_ptr<Connection>& weak, uint64_t seq, Answer a) {
    auto c = weak.lock();
    if (!c) return;
    {
      std::lock_guard<std::mutex> l(c->mu);
      if (seq < c->first_seq || seq - c->first_seq >= c->slots.size()) return;
      auto& slot = c->slots[seq - c->first_seq];
      slot.done = true;
      slot.answer = std::move(a);
    }
    if (std::this_thread::get_id() == thread_.get_id()) {
      ready_here_.push_back(c);  // written after this round of events, without a wake-up
      return;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      ready_.push_back(c);
    }
    wake();
  }

 private:
  static constexpr uint64_t kWakeTag = 1ull << 62;
  static constexpr uint64_t kListenTag = 1ull << 61;

  void wake() {
    uint64_t one = 1;
    ssize_t n = ::write(wakefd_, &one, sizeof(one));
    (void)n;
  }

  void loop() {
    epoll_event events[256];
    int64_t next_idle_check = now_ms() + 1000;
    for (;;) {
      const int n = epoll_wait(epfd_, events, 256, 500);
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = events[i].data.u64;
        if (tag == kWakeTag) {
          uint64_t v;
          while (::read(wakefd_, &v, sizeof(v)) > 0) {
          }
          continue;
        }
        if (tag & kListenTag) {
          accept_on(static_cast<size_t>(tag & ~kListenTag));
          continue;
        }
        auto it = conns_.find(static_cast<int>(tag));
        if (it == conns_.end()) continue;
        std::shared_ptr<Connection> c = it->second;
        if (events[i].events & (EPOLLERR | EPOLLHUP)) {
          // Read what is left first (a client may write and close at once).
          if (events[i].events & EPOLLIN) on_readable(c);
          close_conn(c);
          continue;
        }
        if (events[i].events & EPOLLIN) on_readable(c);
        if ((events[i].events & EPOLLOUT) && c->fd >= 0 && c->tls_want_write) {
          c->tls_want_write = false;
          on_readable(c);  // the TLS handshake that waited for room in the socket
        }
        if ((events[i].events & EPOLLOUT) && c->fd >= 0) flush(c);
      }
      std::vector<std::shared_ptr<Connection>> incoming, ready;
      bool stop;
      {
        std::lock_guard<std::mutex> l(mu_);
        incoming.swap(incoming_);
        ready.swap(ready_);
        stop = stopping_;
      }
      for (auto& c : ready_here_) ready.push_back(std::move(c));
      ready_here_.clear();
      if (stop) {
        for (auto& c : incoming) {
          if (c->ssl) SSL_free(c->ssl);
          ::close(c->fd);
          l_->release(c->ip);
        }
        std::vector<std::shared_ptr<Connection>> all;
        for (auto& [fd, c] : conns_) all.push_back(c);
        for (auto& c : all) close_conn(c);
        return;
      }
      for (auto& c : incoming) adopt(c);
      // Answers completed on this thread while answers were written (a frame parsed when reading
      // resumed) are written in this round too, not after the next epoll_wait.
      while (!ready.empty()) {
        for (auto& c : ready) {
          if (c->fd >= 0) collect(c);
        }
        ready.clear();
        ready.swap(ready_here_);
      }
      const int64_t now = now_ms();
      if (now >= next_idle_check) {
        next_idle_check = now + 1000;
        close_idle(now);
      }
    }
  }

  void accept_on(size_t index) {
    const int lfd = l_->listen_fds_[index];
    for (;;) {
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      int fd = accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) {
          LOG_EVERY_N(WARNING, 100) << "kafka listener: out of file descriptors";
        }
        return;
      }
      const std::string ip = peer_ip(ss);
      if (!l_->admit(ip)) {
        ::close(fd);  // max.connections / max.connections.per.ip
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto c = std::make_shared<Connection>();
      c->fd = fd;
      c->ip = ip;
      c->info.listener = l_->options_.endpoints[index].name;
      c->info.client_host = ip;
      c->info.auto_create_topics = l_->options_.auto_create_topics;
      c->info.cancels = std::make_shared<Cancels>();
      const std::string& protocol = l_->options_.endpoints[index].protocol;
      if (protocol != "PLAINTEXT") {
        c->info.session = std::make_shared<Session>();
        c->info.session->sasl = protocol == "SASL_PLAINTEXT" || protocol == "SASL_SSL";
        c->info.session->mechanisms = l_->options_.sasl_mechanisms;
      }
      if (protocol == "SSL" || protocol == "SASL_SSL") l_->maybe_reload_tls();
      if ((protocol == "SSL" || protocol == "SASL_SSL") && l_->tls_) {
        c->ssl = SSL_new(l_->tls_.get());
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
          LOG_EVERY_N(WARNING, 100) << "kafka listener: cannot start TLS: " << last_tls_error();
          if (c->ssl) SSL_free(c->ssl);
          ::close(fd);
          l_->release(ip);
          continue;
        }
        SSL_set_accept_state(c->ssl);
      }
      auto& threads = l_->threads_;
      threads[l_->next_thread_++ % threads.size()]->hand_over(std::move(c));
    }
  }

  void adopt(const std::shared_ptr<Connection>& c) {
    c->last_active_ms = now_ms();
    conns_[c->fd] = c;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    c->events = ev.events;
    ev.data.u64 = static_cast<uint64_t>(c->fd);
    epoll_ctl(epfd_, EPOLL_CTL_ADD, c->fd, &ev);
  }

  void set_events(const std::shared_ptr<Connection>& c) {
    epoll_event ev{};
    ev.events = (c->reading ? uint32_t{EPOLLIN | EPOLLRDHUP} : 0u) | (c->writing || c->tls_want_write ? uint32_t{EPOLLOUT} : 0u);
    if (ev.events == c->events) return;
    c->events = ev.events;
    ev.data.u64 = static_cast<uint64_t>(c->fd);
    epoll_ctl(epfd_, EPOLL_CTL_MOD, c->fd, &ev);
  }

  // read(2), or SSL_read on a TLS connection (which also runs the handshake): > 0 bytes, 0 at
  // the end of the stream, -1 with errno (EAGAIN: nothing now).
  ssize_t read_some(const std::shared_ptr<Connection>& c, char* buf, size_t n) {
    if (!c->ssl) return ::read(c->fd, buf, n);
    ERR_clear_error();
    const int r = SSL_read(c->ssl, buf, static_cast<int>(n));
    if (!c->tls_ready && SSL_is_init_finished(c->ssl)) tls_established(c);
    if (r > 0) return r;
    switch (SSL_get_error(c->ssl, r)) {
      case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
      case SSL_ERROR_WANT_WRITE:
        c->tls_want_write = true;  // the handshake's answer did not fit in the socket: EPOLLOUT
        errno = EAGAIN;
        return -1;
      case SSL_ERROR_ZERO_RETURN:
        return 0;
      case SSL_ERROR_SYSCALL:
        if (errno == 0) return 0;  // the peer went away without close_notify
        return -1;
      default:
        LOG_EVERY_N(WARNING, 100) << "kafka listener: TLS " << (c->tls_ready ? "error" : "handshake failed")
                                  << " with " << c->ip << ": " << last_tls_error();
        errno = EPROTO;
        return -1;
    }
  }

  void tls_established(const std::shared_ptr<Connection>& c) {
    c->tls_ready = true;
    if (!c->info.session) return;
    // With ssl.client.auth, the verified certificate names the client (SASL may rename it).
    std::string principal = peer_principal(c->ssl);
    if (!principal.empty()) c->info.session->principal = principal;
  }

  bool too_busy(const std::shared_ptr<Connection>& c) {
    std::lock_guard<std::mutex> l(c->mu);
    return c->slots.size() >= kMaxUnansweredRequests || c->out_bytes >= kMaxQueuedResponseBytes;
  }

  void on_readable(const std::shared_ptr<Connection>& c) {
    if (c->fd < 0 || c->closing) return;
    char buf[64 << 10];
    for (;;) {
      if (too_busy(c)) break;
      ssize_t n = read_some(c, buf, sizeof(buf));
      if (n > 0) {
        c->last_active_ms = now_ms();
        c->in.append(buf, static_cast<size_t>(n));
        if (!parse_frames(c)) return;
        // (TLS hands over one record at a time: read until it would block, since bytes it has
        // already taken from the socket would not wake epoll again.)
        if (!c->ssl && static_cast<size_t>(n) < sizeof(buf)) break;
        continue;
      }
      if (n == 0) {
        // The client closed (Kafka's brokers take end-of-stream as a disconnect too): its parked
        // requests are dropped and answers still owed are not written.
        close_conn(c);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_conn(c);
      return;
    }
    // Back-pressure: stop reading while too much is unanswered or unsent.
    c->reading = !too_busy(c);
    set_events(c);
  }

  // Takes every whole frame out of c->in; false when the connection was closed.
  bool parse_frames(const std::shared_ptr<Connection>& c) {
    size_t at = 0;
    while (c->in.size() - at >= 4) {
      const auto* p = reinterpret_cast<const uint8_t*>(c->in.data() + at);
      const int32_t size = static_cast<int32_t>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
                                                (uint32_t{p[2]} << 8) | uint32_t{p[3]});
      if (size < 0 || size > l_->options_.socket_request_max_bytes) {
        LOG_EVERY_N(WARNING, 100) << "kafka listener: closing the connection from " << c->ip << ": a request of "
                                  << size << " bytes (socket.request.max.bytes is "
                                  << l_->options_.socket_request_max_bytes << ")";
        close_conn(c);
        return false;
      }
      if (c->in.size() - at - 4 < static_cast<size_t>(size)) {
        // Not all here yet: make room for it once (bounded by socket.request.max.bytes).
        if (c->in.capacity() < at + 4 + static_cast<size_t>(size)) c->in.reserve(4 + static_cast<size_t>(size));
        break;
      }
      std::string frame = c->in.substr(at + 4, static_cast<size_t>(size));
      at += 4 + static_cast<size_t>(size);
      dispatch(c, std::move(frame));
      if (c->fd < 0) return false;
      if (too_busy(c)) break;
    }
    if (at > 0) c->in.erase(0, at);
    return true;
  }

  void dispatch(const std::shared_ptr<Connection>& c, std::string frame) {
    uint64_t seq;
    {
      std::lock_guard<std::mutex> l(c->mu);
      seq = c->first_seq + c->slots.size();
      c->slots.emplace_back();
    }
    std::weak_ptr<Connection> weak = c;
    std::shared_ptr<IoThread> self = shared_from_this();
    l_->api_.handle(std::move(frame), c->info,
                    [self, weak, seq](Answer a) { self->complete(weak, seq, std::move(a)); });
  }

  // Moves the answers at the front that are complete into the output, in request order.
  void collect(const std::shared_ptr<Connection>& c) {
    bool close_after = false;
    {
      std::lock_guard<std::mutex> l(c->mu);
      while (!c->slots.empty() && c->slots.front().done) {
        Answer a = std::move(c->slots.front().answer);
        c->slots.pop_front();
        ++c->first_seq;
        if (a.kind == Answer::kClose) {
          LOG_EVERY_N(WARNING, 100) << "kafka listener: closing the connection from " << c->ip << ": " << a.reason;
          close_after = true;
          c->slots.clear();
          break;
        }
        if (a.kind == Answer::kNoResponse) continue;
        if (a.close_after) {
          // Written, then the connection closes (a failed authentication): nothing after it.
          LOG_EVERY_N(WARNING, 100) << "kafka listener: closing the connection from " << c->ip << ": " << a.reason;
          close_after = true;
        }
        uint64_t total = 0;
        for (const Chunk& ch : a.chunks) total += ch.length();
        std::string size(4, '\0');
        for (int i = 0; i < 4; ++i) size[i] = static_cast<char>(static_cast<uint32_t>(total) >> (24 - 8 * i));
        c->out_bytes += 4 + total;
        c->out.push_back(Chunk{std::move(size), nullptr, 0, 0, nullptr});
        for (Chunk& ch : a.chunks) c->out.push_back(std::move(ch));
        if (close_after) {
          c->slots.clear();
          break;
        }
      }
    }
    if (close_after) {
      c->closing = true;
      c->reading = false;
    }
    flush(c);
  }

  void flush(const std::shared_ptr<Connection>& c) {
    // A file range read into the chunk's bytes (TLS, which cannot use sendfile, and tests'
    // simulated files without a descriptor); false when the file is shorter than promised.
    auto load = [](Chunk& ch) {
      std::string bytes(ch.size, '\0');
      auto n = ch.file->read_at(ch.position, bytes.data(), bytes.size());
      if (!n.ok() || n.value() != bytes.size()) return false;
      ch.bytes = std::move(bytes);
      ch.file.reset();
      return true;
    };
    while (!c->out.empty()) {
      ssize_t w;
      Chunk& front = c->out.front();
      if (c->ssl) {
        if (front.file && !load(front)) {  // TLS: the segment's bytes are read and encrypted
          close_conn(c);
          return;
        }
        if (front.bytes.size() == c->out_offset) {
          w = 0;  // an empty chunk: nothing to send
        } else {
          ERR_clear_error();
          const int r = SSL_write(c->ssl, front.bytes.data() + c->out_offset,
                                  static_cast<int>(std::min<size_t>(front.bytes.size() - c->out_offset, 1 << 20)));
          if (r <= 0) {
            const int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
            LOG_EVERY_N(WARNING, 100) << "kafka listener: TLS write to " << c->ip << " failed: " << last_tls_error();
            close_conn(c);
            return;
          }
          w = r;
        }
      } else if (front.file && front.file->fd() >= 0) {
        // Zero copy: the segment file's bytes go from the page cache to the socket.
        off_t pos = static_cast<off_t>(front.position + c->out_offset);
        w = ::sendfile(c->fd, front.file->fd(), &pos, front.size - c->out_offset);
        if (w == 0) {
          // The file is shorter than the range promised (truncated under us): the frame cannot
          // be finished.
          LOG(WARNING) << "kafka listener: a segment file ended inside a fetch answer; closing the connection";
          close_conn(c);
          return;
        }
      } else if (front.file) {
        if (!load(front)) {  // a file without a descriptor (tests' simulated files): read once
          close_conn(c);
          return;
        }
        continue;
      } else {
        iovec iov[16];
        int n = 0;
        for (size_t i = 0; i < c->out.size() && n < 16 && !c->out[i].file; ++i, ++n) {
          const std::string& s = c->out[i].bytes;
          const size_t off = i == 0 ? c->out_offset : 0;
          iov[n].iov_base = const_cast<char*>(s.data() + off);
          iov[n].iov_len = s.size() - off;
        }
        w = ::writev(c->fd, iov, n);
      }
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        close_conn(c);
        return;
      }
      c->last_active_ms = now_ms();
      size_t left = static_cast<size_t>(w);
      std::lock_guard<std::mutex> l(c->mu);
      c->out_bytes -= left;
      while (left > 0 || (!c->out.empty() && c->out.front().length() == c->out_offset)) {
        const size_t rest = c->out.front().length() - c->out_offset;
        if (left >= rest) {
          left -= rest;
          c->out.pop_front();
          c->out_offset = 0;
          if (c->out.empty()) break;
        } else {
          c->out_offset += left;
          left = 0;
        }
      }
    }
    const bool want_write = !c->out.empty();
    const bool want_read = !c->closing && !too_busy(c);
    if (want_write != c->writing || want_read != c->reading) {
      const bool resumed = want_read && !c->reading;
      c->writing = want_write;
      c->reading = want_read;
      set_events(c);
      // Reading again: frames may already be waiting in the buffer (and, with TLS, decrypted
      // bytes inside OpenSSL, which epoll cannot see).
      if (want_read && !c->in.empty() && !parse_frames(c)) return;
      if (resumed && c->ssl && c->fd >= 0) on_readable(c);
      if (c->fd < 0) return;
    }
    maybe_close(c);
  }

  void maybe_close(const std::shared_ptr<Connection>& c) {
    if (!c->closing || c->fd < 0 || !c->out.empty()) return;
    bool answered;
    {
      std::lock_guard<std::mutex> l(c->mu);
      answered = c->slots.empty();
    }
    if (answered) close_conn(c);
  }

  void close_idle(int64_t now) {
    std::vector<std::shared_ptr<Connection>> idle;
    for (auto& [fd, c] : conns_) {
      if (now - c->last_active_ms < l_->options_.connections_max_idle_ms || !c->out.empty()) continue;
      std::lock_guard<std::mutex> l(c->mu);
      if (c->slots.empty()) idle.push_back(c);
    }
    for (auto& c : idle) close_conn(c);  // connections.max.idle.ms
  }

  void close_conn(const std::shared_ptr<Connection>& c) {
    if (c->fd < 0) return;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd, nullptr);
    if (c->ssl) {
      if (c->tls_ready) SSL_shutdown(c->ssl);  // close_notify, best effort (never waited for)
      SSL_free(c->ssl);
      c->ssl = nullptr;
    }
    ::close(c->fd);
    conns_.erase(c->fd);
    c->fd = -1;
    {
      std::lock_guard<std::mutex> l(c->mu);
      c->slots.clear();  // completions still to come find no slot
    }
    c->out.clear();
    c->in.clear();
    c->in.shrink_to_fit();
    l_->release(c->ip);
    // Its parked requests (long-poll fetches, joins, syncs) end now; their answers are dropped.
    if (c->info.cancels) c->info.cancels->cancel_all();
  }

  KafkaListener* const l_;
  const int index_;
  int epfd_ = -1, wakefd_ = -1;
  std::thread thread_;
  std::unordered_map<int, std::shared_ptr<Connection>> conns_;  // the loop's
  std::vector<std::shared_ptr<Connection>> ready_here_;         // the loop's
  std::mutex mu_;
  bool stopping_ = false;                                    // with mu_
  std::vector<std::shared_ptr<Connection>> incoming_, ready_;  // with mu_
};

KafkaListener::KafkaListener(KafkaListenerOptions options, RequestCore* core)
    : options_(std::move(options)), api_(core) {}

Result<std::unique_ptr<KafkaListener>, std::string> KafkaListener::start(KafkaListenerOptions options,
                                                                          RequestCore* core) {
  // writev and sendfile to a socket its client has closed fail with EPIPE, and raise SIGPIPE,
  // whose default action ends the process: a client leaving must never stop the broker.
  // (Process-wide; gRPC's own sockets use MSG_NOSIGNAL and do not care.)
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<KafkaListener> l(new KafkaListener(std::move(options), core));
  for (const auto& e : l->options_.endpoints) {
    if ((e.protocol == "SSL" || e.protocol == "SASL_SSL") && !l->tls_) {
      auto ctx = make_server_context(l->options_.tls);
      if (!ctx.ok()) return "listener " + e.name + ": " + ctx.error();
      l->tls_ = std::move(ctx).value();
      l->tls_stamp_ = file_stamp(l->options_.tls);
      l->tls_checked_ms_ = now_ms();
    }
  }
  const int n = std::max(1, l->options_.io_threads);
  for (int i = 0; i < n; ++i) l->threads_.push_back(std::make_shared<IoThread>(l.get(), i));
  for (size_t i = 0; i < l->options_.endpoints.size(); ++i) {
    const auto& e = l->options_.endpoints[i];
    auto r = listen_on(e.host, e.port);
    if (!r.ok()) {
      for (int fd : l->listen_fds_) ::close(fd);
      l->listen_fds_.clear();
      return r.error();
    }
    l->listen_fds_.push_back(r.value().first);
    l->ports_[e.name] = r.value().second;
    l->threads_.front()->add_listen_fd(r.value().first, i);
  }
  for (auto& t : l->threads_) t->start();
  return l;
}


void KafkaListener::maybe_reload_tls() {
  const int64_t now = now_ms();
  if (!tls_ || now - tls_checked_ms_ < 1000) return;
  tls_checked_ms_ = now;
  const std::string stamp = file_stamp(options_.tls);
  if (stamp == tls_stamp_) return;
  auto ctx = make_server_context(options_.tls);
  if (!ctx.ok()) {
    // A half-written file, say: keep serving with the certificate we have, and try again.
    LOG_EVERY_N(WARNING, 10) << "kafka listener: not reloading TLS files: " << ctx.error();
    return;
  }
  tls_ = std::move(ctx).value();
  tls_stamp_ = stamp;
  LOG(INFO) << "kafka listener: reloaded the TLS certificate from " << options_.tls.keystore_location;
}

KafkaListener::~KafkaListener() { stop(); }

void KafkaListener::stop() {
  if (stopped_) return;
  stopped_ = true;
  // The accepting loop first: no connection is handed to a loop that has stopped.
  for (auto& t : threads_) t->stop();
  for (int fd : listen_fds_) ::close(fd);
  listen_fds_.clear();
}

int KafkaListener::port(const std::string& name) const {
  auto it = ports_.find(name);
  return it == ports_.end() ? 0 : it->second;
}

bool KafkaListener::admit(const std::string& ip) {
  std::lock_guard<std::mutex> l(ip_mu_);
  if (open_.load() >= options_.max_connections) return false;
  int32_t& n = per_ip_[ip];
  if (n >= options_.max_connections_per_ip) {
    if (n == 0) per_ip_.erase(ip);
    return false;
  }
  ++n;
  open_.fetch_add(1);
  return true;
}

void KafkaListener::release(const std::string& ip) {
  std::lock_guard<std::mutex> l(ip_mu_);
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second <= 0) per_ip_.erase(it);
  open_.fetch_sub(1);
}

}  // namespace gannet::broker::kafka
